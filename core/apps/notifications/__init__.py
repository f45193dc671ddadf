"""In-app notifications: a bell in the top bar with the unread count, the /notifications
page, /api/v1/notifications, and ``notify`` for code that tells users something (the
workflow engine's "Create a notification", assignment notices, reminders).

Public (docs/plugins.md): ``notify`` and ``Notified`` — ``from core.apps.notifications
import notify``, or from ``core.apps.notifications.api``. The rest of the package (tables,
inbox, web, rest, plugin) may change without notice.
"""
from core.apps.notifications.api import Notified, notify

__all__ = ["Notified", "notify"]
