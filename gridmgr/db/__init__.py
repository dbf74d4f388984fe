"""The database: engines, the embedded cluster, migrations and the core tables."""
