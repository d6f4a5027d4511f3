-- PostgreSQL keeps blob bytes in the database from this version (blob_data); SQLite keeps
-- them in the data directory's files, as before. Numbered alike so both backends are at the
-- same schema version (backups move between them).
SELECT 1
