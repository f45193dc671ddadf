"""Duplicate detection and merging, for every module that flags fields
``merge_duplicates: true`` (leads, contacts, accounts...).

Public: ``find_duplicates(site, module, values, user) -> list[Duplicate]`` (what the create
form, the API and web forms ask before creating a record) and ``merge(site, module,
record_ids, user, survivor=, choices=)``. How keys are made and kept: ``keys.py``; the
lookups: ``find.py``; the merge: ``merge.py``; the pages: ``web.py``; the API action:
``api.py``.
"""
from core.apps.duplicates.find import Duplicate, find_duplicates, find_groups
from core.apps.duplicates.merge import Merged, MergeRefused, merge

__all__ = ["Duplicate", "MergeRefused", "Merged", "find_duplicates", "find_groups", "merge"]
