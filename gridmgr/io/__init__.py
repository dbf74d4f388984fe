"""Layer data in and out: reading tables, validation in SQL, the importer and the exporter."""
