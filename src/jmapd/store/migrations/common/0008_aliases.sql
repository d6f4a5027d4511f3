-- Addresses mail is delivered to beside each account's own name (issue 12): aliases, and
-- catch-alls written "@domain". An address belongs to one account.
CREATE TABLE IF NOT EXISTS aliases (
    account_id TEXT NOT NULL,
    address TEXT NOT NULL,
    PRIMARY KEY (account_id, address)
);
CREATE UNIQUE INDEX IF NOT EXISTS aliases_address ON aliases (address);
