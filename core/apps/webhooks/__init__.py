"""Webhooks: subscriptions, the outbox, deliveries, their API and admin pages."""
