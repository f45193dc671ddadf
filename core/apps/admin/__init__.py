"""Administration: users, roles, teams and access settings pages."""
