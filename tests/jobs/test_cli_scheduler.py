"""``crbm scheduler list|set|run|run-due`` and ``crbm worker``'s presence: what an operator
types, what they read back, and bad input refused with what and where (exit status 2)."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

import cli
from core.jobs import scheduler
from tests.jobs import jobs_probe
from tests.plugins.kitchen_sink import plugin as kitchen_sink


@pytest.fixture
def crbm(probed, monkeypatch):
    monkeypatch.setattr(cli.main, "extra_plugins", (kitchen_sink, jobs_probe))

    def run(*args: str):
        return CliRunner().invoke(cli.main, ["--site", str(probed.folder), *args])
    return run


def test_list_shows_every_task(crbm):
    result = crbm("scheduler", "list")
    assert result.exit_code == 0, result.output
    assert "webhooks.deliver" in result.output and "@every 5s" in result.output
    assert "probe.periodic" in result.output and "never run" in result.output


def test_run_runs_a_task_now_in_the_foreground(crbm, probed):
    result = crbm("scheduler", "run", "probe.periodic")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "probe.periodic: ticked"
    assert jobs_probe.count(probed, "periodic") == 1
    assert "ok" in crbm("scheduler", "list").output


def test_run_of_an_unknown_task_is_a_usage_error(crbm):
    result = crbm("scheduler", "run", "probe.nope")
    assert result.exit_code == 2
    assert "Invalid value for NAME: no scheduled task named \"probe.nope\"" in result.output


def test_set_changes_the_schedule_and_refuses_a_bad_one(crbm, probed):
    result = crbm("scheduler", "set", "probe.periodic", "--schedule", "30 3 * * 1", "--off")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "probe.periodic: 30 3 * * 1, off"
    for bad in ("30 25 * * *", "@every 5 weeks", "every day"):
        result = crbm("scheduler", "set", "probe.periodic", "--schedule", bad)
        assert result.exit_code == 2
        assert f"Invalid value for --schedule: \"{bad}\" is not a valid" in result.output
        assert "(nothing was changed)" in result.output
    state = next(s for s in scheduler.states(probed) if s.name == "probe.periodic")
    assert (state.schedule, state.enabled) == ("30 3 * * 1", False)


def test_run_due_enqueues_what_is_due_and_is_seen_as_external_triggering(crbm, probed):
    assert not scheduler.external_trigger_healthy(probed)
    result = crbm("scheduler", "run-due")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("0 task run(s) enqueued")  # nothing due yet
    assert scheduler.external_trigger_healthy(probed)


def test_worker_is_a_command(crbm):
    result = crbm("worker", "--help")
    assert result.exit_code == 0 and "--concurrency" in result.output
    assert crbm("worker", "--concurrency", "0").exit_code == 2
