"""Email (RFC 8621 §4): the view shared by Email/get and Email/parse (view.py), the store of
Emails and Threads (store.py), the type and its methods (email.py) and Email/parse (parse.py)."""
