"""reload."""
