"""The chaos suite: proves that no acknowledged job is lost when workers, connections or Redis fail."""
