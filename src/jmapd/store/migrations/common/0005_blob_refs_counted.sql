-- The blob references counted from the uses 0004 listed (used_blobs, a temporary table of
-- the migration's transaction); a blob no live record uses loses its row.
UPDATE blobs SET refs = coalesce(
    (SELECT n FROM used_blobs u WHERE u.account_id = blobs.account_id AND u.blob_id = blobs.blob_id),
    0)
WHERE uploader = '';

DELETE FROM blobs WHERE uploader = '' AND refs = 0;

DROP TABLE used_blobs;

-- Blobs whose last reference went: their files are removed by housekeeping (only when still
-- no row references them, and not while young: a new upload may be racing).
CREATE TABLE blob_orphans (
    blob_id TEXT PRIMARY KEY,
    since DOUBLE PRECISION NOT NULL
);
