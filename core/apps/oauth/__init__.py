"""OAuth2 and API clients: the authorization server, client registry and admin pages."""
