-- The ContactCard index (store/cardindex.py): what ContactCard/query filters and sorts by
-- (RFC 9610 §3.3), written with each card in the same transaction.

-- One row per ContactCard. Sort keys of name/given, name/surname and name/surname2 per
-- collation (u i;unicode-casemap, a i;ascii-casemap, n i;ascii-numeric), '' when the card has
-- no such component; created and updated in ms since the epoch, -1 when not set.
CREATE TABLE IF NOT EXISTS cards (
    account_id TEXT NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    uid TEXT NOT NULL,
    kind TEXT,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    given_u TEXT COLLATE "C" NOT NULL, given_a TEXT COLLATE "C" NOT NULL, given_n TEXT COLLATE "C" NOT NULL,
    surname_u TEXT COLLATE "C" NOT NULL, surname_a TEXT COLLATE "C" NOT NULL, surname_n TEXT COLLATE "C" NOT NULL,
    surname2_u TEXT COLLATE "C" NOT NULL, surname2_a TEXT COLLATE "C" NOT NULL, surname2_n TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (account_id, id)
);
-- uid is unique per account (RFC 9610 §3).
CREATE UNIQUE INDEX IF NOT EXISTS cards_uid ON cards (account_id, uid);
CREATE INDEX IF NOT EXISTS cards_kind ON cards (account_id, kind);
CREATE INDEX IF NOT EXISTS cards_created ON cards (account_id, created, id);
CREATE INDEX IF NOT EXISTS cards_updated ON cards (account_id, updated, id);
CREATE INDEX IF NOT EXISTS cards_given ON cards (account_id, given_u, id);
CREATE INDEX IF NOT EXISTS cards_surname ON cards (account_id, surname_u, id);
CREATE INDEX IF NOT EXISTS cards_surname2 ON cards (account_id, surname2_u, id);

CREATE TABLE IF NOT EXISTS card_books (
    account_id TEXT NOT NULL,
    book_id TEXT NOT NULL,
    card_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (account_id, book_id, card_id)
);
CREATE INDEX IF NOT EXISTS card_books_card ON card_books (account_id, card_id);

-- Group members by uid (hasMember).
CREATE TABLE IF NOT EXISTS card_members (
    account_id TEXT NOT NULL,
    member TEXT NOT NULL,
    card_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (account_id, member, card_id)
);
CREATE INDEX IF NOT EXISTS card_members_card ON card_members (account_id, card_id);

-- Searchable text: each value folded, from each word on (so a search token matches the
-- start of any word, and a phrase the words that follow it), by field.
CREATE TABLE IF NOT EXISTS card_terms (
    account_id TEXT NOT NULL,
    term TEXT COLLATE "C" NOT NULL,
    field TEXT NOT NULL,
    card_id TEXT COLLATE "C" NOT NULL
);
CREATE INDEX IF NOT EXISTS card_terms_term ON card_terms (account_id, term, field, card_id);
CREATE INDEX IF NOT EXISTS card_terms_card ON card_terms (account_id, card_id);
