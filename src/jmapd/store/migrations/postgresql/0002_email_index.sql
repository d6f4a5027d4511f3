-- The Email index (store/mailindex.py): what Email/query filters and sorts by, what mailbox
-- counts are made of, and the full-text index. Derived from the Email records; `jmapd reindex`
-- rebuilds it.

-- One row per Email, written once (every column is immutable).
CREATE TABLE emails (
    account_id TEXT NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    thread_id TEXT NOT NULL,
    received_at BIGINT NOT NULL, -- milliseconds since the epoch
    size BIGINT NOT NULL,
    sent_at BIGINT,
    has_attachment INTEGER NOT NULL,
    -- sort keys of from, to and subject per collation: u i;unicode-casemap, a i;ascii-casemap,
    -- n i;ascii-numeric; compared as UTF-8 octets
    from_u TEXT COLLATE "C" NOT NULL, from_a TEXT COLLATE "C" NOT NULL,
    from_n TEXT COLLATE "C" NOT NULL,
    to_u TEXT COLLATE "C" NOT NULL, to_a TEXT COLLATE "C" NOT NULL,
    to_n TEXT COLLATE "C" NOT NULL,
    subject_u TEXT COLLATE "C" NOT NULL, subject_a TEXT COLLATE "C" NOT NULL,
    subject_n TEXT COLLATE "C" NOT NULL,
    -- folded words (mail/search.py) per field, and all of them for the text filter
    subject_words TSVECTOR NOT NULL,
    from_words TSVECTOR NOT NULL,
    to_words TSVECTOR NOT NULL,
    cc_words TSVECTOR NOT NULL,
    bcc_words TSVECTOR NOT NULL,
    body_words TSVECTOR NOT NULL,
    all_words TSVECTOR NOT NULL,
    PRIMARY KEY (account_id, id)
);
CREATE INDEX emails_received ON emails (account_id, received_at, id);
CREATE INDEX emails_thread ON emails (account_id, thread_id);
CREATE INDEX emails_subject_words ON emails USING GIN (subject_words);
CREATE INDEX emails_from_words ON emails USING GIN (from_words);
CREATE INDEX emails_to_words ON emails USING GIN (to_words);
CREATE INDEX emails_cc_words ON emails USING GIN (cc_words);
CREATE INDEX emails_bcc_words ON emails USING GIN (bcc_words);
CREATE INDEX emails_body_words ON emails USING GIN (body_words);
CREATE INDEX emails_all_words ON emails USING GIN (all_words);

-- Mailbox membership, with what a mailbox listing sorts and counts by.
CREATE TABLE email_mailboxes (
    account_id TEXT NOT NULL,
    mailbox_id TEXT NOT NULL,
    email_id TEXT COLLATE "C" NOT NULL,
    received_at BIGINT NOT NULL,
    thread_id TEXT NOT NULL,
    unread INTEGER NOT NULL,
    PRIMARY KEY (account_id, mailbox_id, email_id)
);
CREATE INDEX email_mailboxes_received ON email_mailboxes (account_id, mailbox_id, received_at, email_id);
CREATE INDEX email_mailboxes_thread ON email_mailboxes (account_id, mailbox_id, thread_id, unread);
CREATE INDEX email_mailboxes_email ON email_mailboxes (account_id, email_id);

CREATE TABLE email_keywords (
    account_id TEXT NOT NULL,
    email_id TEXT NOT NULL,
    keyword TEXT NOT NULL,
    PRIMARY KEY (account_id, email_id, keyword)
);
CREATE INDEX email_keywords_keyword ON email_keywords (account_id, keyword, email_id);
