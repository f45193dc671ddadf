"""Test-only: registers the editor's hooks (``plugins.workflows.web``) while the workflows
plugin does not register them itself (before the lead wires them into its plugin.py)."""
from plugins.workflows.web import crbm_record_actions, crbm_web_routes  # noqa: F401

PLUGIN_NAME = "workflow_editor_hooks"
