"""Use cases: load and lock, call the pure core, store state and events in one transaction."""
