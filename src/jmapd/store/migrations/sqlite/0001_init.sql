-- Every table is keyed by account_id first, so accounts can be spread across shards.
CREATE TABLE accounts (
    account_id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    modseq INTEGER NOT NULL DEFAULT 0,
    created DOUBLE PRECISION NOT NULL
);

-- user_id may use account_id (owners need no row).
CREATE TABLE access (
    account_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    read_only INTEGER NOT NULL,
    PRIMARY KEY (account_id, user_id)
);
CREATE INDEX access_user ON access (user_id);

CREATE TABLE tokens (
    token_hash TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    name TEXT NOT NULL,
    read_only INTEGER NOT NULL,
    created DOUBLE PRECISION NOT NULL,
    UNIQUE (account_id, name)
);

CREATE TABLE records (
    account_id TEXT NOT NULL,
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    modseq INTEGER NOT NULL,
    created_modseq INTEGER NOT NULL,
    -- the modseq of the last change to stored properties; a count-only change (bump) leaves it
    props_modseq INTEGER NOT NULL,
    destroyed INTEGER NOT NULL DEFAULT 0,
    destroyed_at DOUBLE PRECISION,
    data BLOB,
    PRIMARY KEY (account_id, type, id)
);
CREATE INDEX records_changes ON records (account_id, type, modseq);

-- Per type: the state (newest modseq) and the floor below which /changes cannot answer.
CREATE TABLE type_states (
    account_id TEXT NOT NULL,
    type TEXT NOT NULL,
    state INTEGER NOT NULL,
    floor INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, type)
);

-- A blob reference: permanent (uploader '' and expires NULL) once a record uses the blob;
-- until then one per uploader, visible only to them (RFC 8620 §6.1), expiring.
CREATE TABLE blobs (
    account_id TEXT NOT NULL,
    blob_id TEXT NOT NULL,
    uploader TEXT NOT NULL,
    size INTEGER NOT NULL,
    expires DOUBLE PRECISION,
    PRIMARY KEY (account_id, blob_id, uploader)
);
CREATE INDEX blobs_expires ON blobs (expires) WHERE expires IS NOT NULL;
CREATE INDEX blobs_blob ON blobs (blob_id);
