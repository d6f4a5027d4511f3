-- Blob references are counted (store/sql.py keep_blob, release_blob): a blob a record uses
-- has one row per account with uploader '' and `refs` the number of uses. When the last use
-- goes, the row goes (the blob is no longer downloadable at once) and the blob is queued in
-- blob_orphans for housekeeping to remove its file. The counts of existing mail are taken
-- from the Email records (the message's blobId and, for messages stored before body parts
-- were derived, each part's); a blob no live record uses loses its row now, and its file
-- goes with the next sweep of the blob directory. The counts are set by 0005
-- (common to both dialects), from the table of uses made here.
ALTER TABLE blobs ADD COLUMN refs INTEGER NOT NULL DEFAULT 0;

CREATE TEMP TABLE used_blobs AS
SELECT r.account_id AS account_id, t.atom AS blob_id, count(*) AS n
FROM records r, json_tree(CAST(r.data AS TEXT)) t
WHERE r.type = 'Email' AND r.destroyed = 0 AND t.key = 'blobId' AND t.type = 'text'
GROUP BY r.account_id, t.atom;

CREATE INDEX temp.used_blobs_key ON used_blobs (account_id, blob_id);
