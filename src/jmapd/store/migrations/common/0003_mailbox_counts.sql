-- Mailbox counts kept as they change (store/mailindex.py), so Mailbox/get reads one row per
-- mailbox instead of counting its messages. Both are derived from email_mailboxes, and filled
-- from it here. Written in the SQL both dialects speak (migrations/common).

-- How many of a thread's messages are in a mailbox, and how many of those are unread.
CREATE TABLE mailbox_threads (
    account_id TEXT NOT NULL,
    mailbox_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    emails INTEGER NOT NULL,
    unread INTEGER NOT NULL,
    PRIMARY KEY (account_id, mailbox_id, thread_id)
);

CREATE TABLE mailbox_counts (
    account_id TEXT NOT NULL,
    mailbox_id TEXT NOT NULL,
    emails INTEGER NOT NULL,
    unread INTEGER NOT NULL,
    threads INTEGER NOT NULL,
    unread_threads INTEGER NOT NULL,
    PRIMARY KEY (account_id, mailbox_id)
);

INSERT INTO mailbox_threads (account_id, mailbox_id, thread_id, emails, unread)
SELECT account_id, mailbox_id, thread_id, count(*), sum(unread)
FROM email_mailboxes GROUP BY account_id, mailbox_id, thread_id;

INSERT INTO mailbox_counts (account_id, mailbox_id, emails, unread, threads, unread_threads)
SELECT account_id, mailbox_id, sum(emails), sum(unread), count(*),
       sum(CASE WHEN unread > 0 THEN 1 ELSE 0 END)
FROM mailbox_threads GROUP BY account_id, mailbox_id;
