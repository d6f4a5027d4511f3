-- The outbound queue (issue 12): what an account sends, one row per route (the smarthost, a
-- recipient domain's MX, or this server's own accounts), until every recipient has an answer.
-- `sending` is set, and committed, just before the end of DATA: a row found so after a crash
-- was handed over (RFC 1047), and is not sent again.
CREATE TABLE IF NOT EXISTS outbox (
    account_id TEXT NOT NULL,
    id TEXT NOT NULL,
    submission_id TEXT NOT NULL,
    route TEXT NOT NULL,
    blob_id TEXT NOT NULL,
    mail_from TEXT NOT NULL,
    recipients TEXT NOT NULL,
    send_at DOUBLE PRECISION NOT NULL,
    next_try DOUBLE PRECISION NOT NULL,
    expires DOUBLE PRECISION NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    sending INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, id)
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (next_try);
CREATE INDEX IF NOT EXISTS outbox_submission ON outbox (account_id, submission_id);
