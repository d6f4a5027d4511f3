"""Email (RFC 8621 §4), one module per concern: the type and its /set and /copy hooks
(email.py), Email/get (get.py), Email/import (imports.py), Email/parse (parse.py), the view
Email/get and Email/parse share (view.py), and Emails and Threads in the store (store.py)."""
