-- The full-text table keeps no copy of the words it indexes (FTS5 contentless): the copy was
-- half the database. A delete names the words it removes, so each message's words are kept
-- compressed beside it (email_words, zlib over a JSON list in the table's column order).
-- The index is emptied here and rebuilt from the messages by the reindex `migrate` and
-- `serve` run for accounts whose index lacks messages. (Run again over a version-11 database,
-- it does the same.)
DROP TABLE IF EXISTS email_words;
DROP TABLE email_text;
CREATE VIRTUAL TABLE email_text USING fts5 (
    subject, from_, to_, cc, bcc, body, content = '', tokenize = 'unicode61 remove_diacritics 0'
);
CREATE TABLE email_words (
    seq INTEGER PRIMARY KEY, -- emails.seq, the full-text row id
    words BLOB NOT NULL
);
DELETE FROM emails;
DELETE FROM email_mailboxes;
DELETE FROM email_keywords;
DELETE FROM mailbox_threads;
DELETE FROM mailbox_counts
