"""Email (RFC 8621 §4): one module per concern. Only Email/parse exists yet; Email/get, /set,
/query and /import come with the Email store."""
