"""The ASGI application: session, API, upload, download and event source routes."""
