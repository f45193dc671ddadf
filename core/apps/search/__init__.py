"""Quick search's keys: filled for the records no save has keyed."""
