"""Matching: in-memory indexes, the rule engine (pure) and its rules."""
