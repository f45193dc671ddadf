"""A test-only plugin: ``deals``, a module with a kanban board (``features.board``) — a
stage dropdown, an amount in a currency and a probability — for the board's tests
(core/apps/board). The pipeline plugins declare their own boards the same way."""
