"""Backup and restore (issue 24): ``backup.py`` makes an archive, ``restore.py`` brings one
back, ``snapshot.py`` is the database-independent form of the rows, ``archive.py`` the zip
with its manifest and checksums."""
