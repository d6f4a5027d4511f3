-- Keys every worker and node of one store shares (the key that signs browser access
-- tokens), made by whichever asks first.
CREATE TABLE IF NOT EXISTS server_keys (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
