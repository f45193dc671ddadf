"""The test suite's root: the fixtures and hooks of ``tests/conftest.py`` for every test folder.

Tests live beside the code they test (``tests/<area>/`` for the kernel, web UI, API and
applications; ``plugins/<name>/tests/`` for each shipped plugin), so the suite's fixtures
must reach folders outside ``tests/``. A conftest's fixtures only reach its own folder;
a plugin's reach every test. So ``tests/conftest.py`` is loaded here as a plugin, once.

pytest would also load the same file as ``tests/``'s conftest and refuse the module
registered twice; the placeholder registered under the conftest's path below tells pytest
that file is already loaded (``_importconftest`` returns what is registered there).
"""
from pathlib import Path
from types import ModuleType

pytest_plugins = ["tests.conftest"]

SUITE_CONFTEST = Path(__file__).resolve().parent / "tests" / "conftest.py"


def pytest_plugin_registered(plugin, plugin_name, manager):
    if plugin_name == "tests.conftest" and manager.get_plugin(str(SUITE_CONFTEST)) is None:
        manager.register(ModuleType("tests.conftest, loaded by the root conftest.py"),
                         str(SUITE_CONFTEST))
