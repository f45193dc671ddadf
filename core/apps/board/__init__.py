"""Kanban boards: a list view of any module that declares ``features.board``."""
