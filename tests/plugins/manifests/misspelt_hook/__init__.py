"""A plugin whose hook name is misspelt: pluggy alone would never call it."""
from core.kernel.hookspecs import hookimpl


@hookimpl
def crbm_befor_save(module, batch, user, connection):
    raise AssertionError("never called")
