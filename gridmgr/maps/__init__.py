"""What the map pages read: vector tiles and map queries."""
