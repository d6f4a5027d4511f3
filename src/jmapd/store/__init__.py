"""Storage: the narrow interfaces (base.py) and their backends."""
