"""People: the roster of units and people, and their accounts."""
