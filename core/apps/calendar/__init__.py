"""The calendar and its holiday sets."""
