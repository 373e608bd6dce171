"""Use cases: each takes a unit of work, raises domain errors and records events."""
