"""The demo city generator; never imported by the rest of the core."""
