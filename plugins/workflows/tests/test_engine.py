"""The workflow engine on a save: conditions, applies to, in-transaction actions, outward
ones queued only after commit, the depth limit, a plugin's action, start_workflow, and
run-time failures logged on the run history."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from core.kernel.records import SYSTEM_USER
from plugins.workflows import engine
from plugins.workflows.tests.conftest import make_workflow, runs
from plugins.workflows.tests.wf_probe import plugin as probe

HOT = {"group": "all_of", "conditions": [
    {"field": "temperature", "when": "changed_to", "operator": "is", "value": "hot"}]}


def test_a_matching_save_runs_its_actions_in_the_same_transaction(wsite, admin, queue):
    workflow = make_workflow(wsite, admin, "wf_leads",
                             [{"type": "set_fields", "values": {"status": "contacted"}}], HOT)
    cold = wsite.records.create("wf_leads", {"name": "Cold one", "temperature": "cold"}, admin)
    hot = wsite.records.create("wf_leads", {"name": "Hot one", "temperature": "hot"}, admin)
    assert wsite.records.get("wf_leads", cold["id"], admin)["status"] == "new"
    assert wsite.records.get("wf_leads", hot["id"], admin)["status"] == "contacted"
    [run] = runs(wsite, workflow_id=workflow["id"])
    assert (run["status"], run["record_id"], run["message"]) == \
        ("done", hot["id"], "fields set: status")
    assert queue.jobs == []  # nothing outward


def test_applies_to_new_or_existing(wsite, admin, queue):
    make_workflow(wsite, admin, "wf_leads", [{"type": "wf_probe.mark", "label": "new"}],
                  applies_to="new")
    make_workflow(wsite, admin, "wf_leads", [{"type": "wf_probe.mark", "label": "old"}],
                  applies_to="existing")
    lead = wsite.records.create("wf_leads", {"name": "A"}, admin)
    wsite.records.update("wf_leads", lead["id"], {"name": "B"}, admin)
    queue.drain()
    assert sorted(label for _id, label in probe.MARKS) == ["new", "old"]


def test_outward_actions_wait_for_the_commit(wsite, admin, queue):
    make_workflow(wsite, admin, "wf_leads", [{"type": "wf_probe.mark", "label": "out"}], HOT)
    with pytest.raises(RuntimeError), wsite.engine.begin() as conn:
        wsite.records.create("wf_leads", {"name": "Rolled back", "temperature": "hot"},
                             admin, connection=conn)
        raise RuntimeError("the caller gives up")
    assert queue.jobs == [] and runs(wsite) == []
    lead = wsite.records.create("wf_leads", {"name": "Kept", "temperature": "hot"}, admin)
    assert len(queue.jobs) == 1 and queue.drain() == 1
    assert probe.MARKS == [(lead["id"], "out")]
    [run] = runs(wsite, record_id=lead["id"])
    assert (run["status"], run["message"]) == ("done", "marked out")
    queue.jobs.append((engine.JOB, {"run_id": run["id"]}, None, None))  # a redelivery
    queue.drain()
    assert len(probe.MARKS) == 1


def test_a_workflow_that_would_loop_forever_stops_at_the_depth_limit(wsite, admin, queue):
    to_new = {"group": "all_of", "conditions": [
        {"field": "status", "when": "changed_to", "operator": "is", "value": "loop"}]}
    to_loop = {"group": "all_of", "conditions": [
        {"field": "status", "when": "changed_to", "operator": "is", "value": "new"}]}
    make_workflow(wsite, admin, "wf_leads",
                  [{"type": "set_fields", "values": {"status": "new"}}], to_new, name="Back")
    make_workflow(wsite, admin, "wf_leads",
                  [{"type": "set_fields", "values": {"status": "loop"}}], to_loop,
                  name="Forth", applies_to="existing")
    lead = wsite.records.create("wf_leads", {"name": "Ping-pong", "status": "contacted"},
                                admin)
    wsite.records.update("wf_leads", lead["id"], {"status": "loop"}, admin)  # returns
    history = runs(wsite, record_id=lead["id"])
    assert [r["status"] for r in history].count("done") == engine.MAX_DEPTH
    assert [r["message"] for r in history if r["status"] == "skipped"] == \
        ["skipped: depth limit"]


def test_a_plugin_action_failing_at_run_time_is_logged_not_retried(wsite, admin, queue):
    workflow = make_workflow(wsite, admin, "wf_leads",
                             [{"type": "wf_probe.mark", "label": "boom"}])
    wsite.records.create("wf_leads", {"name": "A"}, admin)
    queue.drain()
    [run] = runs(wsite, workflow_id=workflow["id"])
    assert (run["status"], run["message"]) == ("failed", "the probe refuses 'boom'")
    assert queue.failures == []  # permanent: the job ends, nothing to retry


def test_a_field_removed_after_save_is_logged_on_the_run_history(wsite, admin, queue):
    workflow = make_workflow(wsite, admin, "wf_leads",
                             [{"type": "set_fields", "values": {"status": "contacted"}}], HOT)
    table = wsite.records.table(wsite.registry.module("workflows"))
    with wsite.engine.begin() as conn:  # as a Studio removal leaves it: checked no more
        conn.execute(table.update().values(conditions=HOT_TEXT_GONE))
    engine.invalidate(wsite)
    lead = wsite.records.create("wf_leads", {"name": "Saved anyway"}, admin)
    assert wsite.records.get("wf_leads", lead["id"], admin)["name"] == "Saved anyway"
    [run] = runs(wsite, workflow_id=workflow["id"])
    assert run["status"] == "failed" and "rating" in run["message"]


HOT_TEXT_GONE = ('{"group": "all_of", "conditions": [{"field": "rating", "when": "current", '
                 '"operator": "is", "value": "hot"}]}')


def test_start_workflow_runs_the_other_workflows_actions(wsite, admin, queue):
    other = make_workflow(wsite, admin, "wf_leads",
                          [{"type": "set_fields", "values": {"status": "contacted"}}],
                          name="Other", active=True, trigger="scheduled")
    make_workflow(wsite, admin, "wf_leads",
                  [{"type": "start_workflow", "workflow_id": other["id"]}], HOT, name="Start")
    lead = wsite.records.create("wf_leads", {"name": "A", "temperature": "hot"}, admin)
    assert wsite.records.get("wf_leads", lead["id"], admin)["status"] == "contacted"


def test_round_robin_over_a_teams_active_members(wsite, admin, queue):
    from core.kernel.users import create_user, set_active
    teams = wsite.tables.tables["crbm_teams"]
    members = wsite.tables.tables["crbm_team_members"]
    users = [create_user(wsite, name, "Sales-pass-word-1") for name in ("ann", "bob", "cid")]
    import datetime as dt
    now = dt.datetime.now(dt.UTC)
    with wsite.engine.begin() as conn:
        conn.execute(teams.insert().values(id="t-sales", name="Sales", created_at=now,
                                           modified_at=now))
        conn.execute(members.insert(), [{"team_id": "t-sales", "user_id": u.id}
                                        for u in users])
    set_active(wsite, "cid", False)
    make_workflow(wsite, admin, "wf_leads",
                  [{"type": "assign", "team_id": "t-sales", "round_robin": True}],
                  applies_to="new")
    assigned = [wsite.records.get("wf_leads", wsite.records.create(
        "wf_leads", {"name": f"L{i}"}, admin)["id"], SYSTEM_USER)["assigned_user_id"]
        for i in range(4)]
    ann, bob = users[0].id, users[1].id
    assert sorted(assigned) == sorted([ann, bob, ann, bob])
    assert assigned[0] != assigned[1] and assigned[0] == assigned[2]
    rr = wsite.tables.tables["workflow_round_robin"]
    with wsite.engine.connect() as conn:
        assert conn.execute(sa.select(rr.c.counter)).scalar() == 3


def test_a_deleted_trigger_acts_on_the_record_as_it_was(wsite, admin, queue):
    workflow = make_workflow(wsite, admin, "wf_leads",
                             [{"type": "wf_probe.mark", "label": "gone"}],
                             {"group": "all_of", "conditions": [  # nothing changes on delete
                                 {"field": "temperature", "when": "current", "operator": "is",
                                  "value": "hot"}]}, trigger="deleted")
    kept = wsite.records.create("wf_leads", {"name": "Kept", "temperature": "hot"}, admin)
    gone = wsite.records.create("wf_leads", {"name": "Gone", "temperature": "hot"}, admin)
    cold = wsite.records.create("wf_leads", {"name": "Cold", "temperature": "cold"}, admin)
    wsite.records.delete("wf_leads", gone["id"], admin)
    wsite.records.delete("wf_leads", cold["id"], admin)
    queue.drain()
    assert probe.MARKS == [(gone["id"], "gone")]
    [run] = runs(wsite, workflow_id=workflow["id"])
    assert run["trigger"] == "deleted" and run["status"] == "done"
    assert kept["id"] not in {r["record_id"] for r in runs(wsite)}


@pytest.mark.server_db
def test_round_robin_takes_turns_under_concurrent_saves(wsite, admin, queue):
    import datetime as dt
    from concurrent.futures import ThreadPoolExecutor

    from core.kernel.users import create_user
    teams = wsite.tables.tables["crbm_teams"]
    members = wsite.tables.tables["crbm_team_members"]
    users = [create_user(wsite, name, "Sales-pass-word-1") for name in ("ann", "bob")]
    now = dt.datetime.now(dt.UTC)
    with wsite.engine.begin() as conn:
        conn.execute(teams.insert().values(id="t-rr", name="RR", created_at=now,
                                           modified_at=now))
        conn.execute(members.insert(), [{"team_id": "t-rr", "user_id": u.id} for u in users])
    make_workflow(wsite, admin, "wf_leads",
                  [{"type": "assign", "team_id": "t-rr", "round_robin": True}],
                  applies_to="new")

    def create(i):
        return wsite.records.create("wf_leads", {"name": f"C{i}"}, admin)["id"]

    with ThreadPoolExecutor(4) as pool:
        ids = list(pool.map(create, range(20)))
    assigned = [wsite.records.get("wf_leads", i, SYSTEM_USER)["assigned_user_id"] for i in ids]
    assert sorted(assigned.count(u.id) for u in users) == [10, 10]
    rr = wsite.tables.tables["workflow_round_robin"]
    with wsite.engine.connect() as conn:
        assert conn.execute(sa.select(rr.c.counter)).scalar() == 19


@pytest.mark.parametrize("execute_as", ["trigger_user", "admin", "owner"])
def test_execute_as_picks_who_writes(wsite, admin, queue, execute_as):
    from core.kernel.users import create_user
    bob = create_user(wsite, "bob", "Sales-pass-word-1", is_admin=True)
    make_workflow(wsite, admin, "wf_leads",
                  [{"type": "set_fields", "values": {"status": "contacted"}}],
                  execute_as=execute_as, applies_to="new")
    lead = wsite.records.create("wf_leads", {"name": "Who", "assigned_user_id": bob.id},
                                admin)
    stored = wsite.records.get("wf_leads", lead["id"], SYSTEM_USER)
    assert stored["status"] == "contacted"
    assert stored["modified_by"] == {"trigger_user": admin.id, "admin": SYSTEM_USER.id,
                                     "owner": bob.id}[execute_as]
