"""Test-only: the workflow record as brief 18b describes it, for the editor's tests until
the engine's ``plugins/workflows/modules/workflows.yaml`` exists (then this is not loaded)."""
PLUGIN_NAME = "workflow_record_stub"
