"""The test suite's root: what ``tests/conftest.py`` provides, for every test folder.

Tests live beside the code they test (``tests/<area>/`` for the kernel, web UI, API and
applications; ``plugins/<name>/tests/`` for each shipped plugin), but a conftest's fixtures
only reach its own folder. So this conftest, at the root, takes over every name of
``tests/conftest.py`` — its fixtures, its hooks and its ``pytest_plugins`` — and that file
is not loaded a second time as ``tests/``'s own conftest (pytest would refuse the module
registered twice, or run its hooks twice): the placeholder registered under its path below
tells pytest it is loaded already.

Fixtures of a conftest come after those of installed pytest plugins, so the suite's
overrides (its ``site``, for one) still win.
"""
from pathlib import Path
from types import ModuleType

import tests.conftest as suite

SUITE_CONFTEST = Path(suite.__file__).resolve()

globals().update({name: value for name, value in vars(suite).items()
                  if not name.startswith("__")})


def pytest_plugin_registered(plugin, plugin_name, manager):
    if plugin_name == str(Path(__file__).resolve()) and \
            manager.get_plugin(str(SUITE_CONFTEST)) is None:
        manager.register(ModuleType("tests.conftest, taken over by the root conftest.py"),
                         str(SUITE_CONFTEST))
