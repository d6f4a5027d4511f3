-- SQLite's migration 11 made its full-text table contentless; PostgreSQL's words are
-- tsvectors and stay as they are. This keeps the schema versions of both backends in step,
-- so that a backup of one restores into the other (backup.py compares them).
SELECT 1
