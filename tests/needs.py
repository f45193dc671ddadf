"""What a test needs from the machine beyond Python packages (a Debian program such as
slapd, pdftoppm or Chromium): on a developer's machine a test without it is skipped, saying
what to install; in CI (the CI environment variable, which `.ci/run` sets) it fails, since
`.ci/run` installs everything and a skip there would hide a broken set-up."""
from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    return bool(os.environ.get("CI"))


def missing(reason: str) -> None:
    """Skip (fail in CI) the test or fixture that lacks something, with ``reason``."""
    if in_ci():
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)
