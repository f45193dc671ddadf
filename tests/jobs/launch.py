"""``crbm`` with the jobs_probe and kitchen_sink test plugins loaded: how the tests start
real ``crbm worker`` and ``crbm serve`` processes that know the probe's jobs and task."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import cli
from tests.jobs import jobs_probe
from tests.plugins.kitchen_sink import plugin as kitchen_sink

if __name__ == "__main__":
    cli.main.extra_plugins = (kitchen_sink, jobs_probe)
    cli.main()
