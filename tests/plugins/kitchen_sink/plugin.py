"""A test-only plugin: a module using every field type, and hooks that record their calls.

Tests switch behaviour through ``RECORDER``; nothing here is shipped.
"""
from core.kernel.errors import VetoError
from core.kernel.hookspecs import hookimpl

PLUGIN_NAME = "kitchen_sink"


class Recorder:
    def __init__(self):
        self.calls = []
        self.veto_name = None  # a gadget with this name is refused by before_save
        self.number = None  # before_save gives new gadgets this number (a writer's race)

    def reset(self):
        self.calls.clear()
        self.veto_name = None
        self.number = None


RECORDER = Recorder()


@hookimpl
def crbm_before_save(module, batch, user):
    if module.name != "gadgets":
        return
    RECORDER.calls.append(("before_save", [c.record.get("name") for c in batch], user.username,
                           [c.is_new for c in batch], [sorted(c.changes) for c in batch]))
    for change in batch:
        if RECORDER.veto_name and change.record.get("name") == RECORDER.veto_name:
            raise VetoError(f"gadgets named {RECORDER.veto_name!r} are not allowed")
        if RECORDER.number and change.is_new:
            change.record["gadget_number"] = RECORDER.number


@hookimpl
def crbm_after_save(module, batch, user):
    if module.name == "gadgets":
        RECORDER.calls.append(("after_save", [c.record.get("name") for c in batch], user.username,
                               [c.is_new for c in batch], [sorted(c.changes) for c in batch]))


@hookimpl
def crbm_before_delete(module, records, user):
    if module.name == "gadgets":
        RECORDER.calls.append(("before_delete", [r["name"] for r in records], user.username))


@hookimpl
def crbm_after_delete(module, records, user):
    if module.name == "gadgets":
        RECORDER.calls.append(("after_delete", [r["name"] for r in records], user.username))
