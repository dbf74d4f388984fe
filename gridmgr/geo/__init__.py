"""Geography: coordinate reference systems and reading GIS files."""
