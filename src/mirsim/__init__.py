"""mirsim: learn how people hear similarity between musical sounds, and search with it."""

__version__ = "0.1.0"
