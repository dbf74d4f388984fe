"""The unit grid: regions, cells and their versions, topology checks and assignment."""
