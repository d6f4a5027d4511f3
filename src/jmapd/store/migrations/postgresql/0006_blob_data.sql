-- Blob bytes in the database (store/postgres.py PostgresBlobStore): the default blob store
-- when the database is PostgreSQL, so nodes need no shared directory. Content-addressed, so
-- one row per blob whatever the accounts that reference it (`blobs`); `written` is when it
-- was last put, which housekeeping leaves alone for blob_grace seconds.
CREATE TABLE IF NOT EXISTS blob_data (
    blob_id TEXT PRIMARY KEY,
    data BYTEA NOT NULL,
    written DOUBLE PRECISION NOT NULL
);


