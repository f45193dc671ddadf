"""Requires accounts 2 or later; the shipped accounts is 0.1.0."""
