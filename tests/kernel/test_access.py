"""Access control (implementation guide 7.3): the worked examples of 7.3.7 and the rules
of 7.3.3-7.3.6, through the record service, on the real database."""
import pytest

from core.apps.admin import access_admin as aa
from core.kernel.access import check_rule
from core.kernel.errors import NotFoundError, ValidationError
from core.kernel.records import SYSTEM_USER, Query
from core.kernel.users import create_user

PASSWORD = "correct horse battery"


def make_user(site, name, **kwargs):
    return create_user(site, name, PASSWORD, **kwargs)


def names(site, user, module="accounts", action="list"):
    rows = site.records.list(module, user, Query(fields=["name"], limit=None), action=action)
    return sorted(r["name"] for r in rows)


def allowed(site, user, action, module="accounts"):
    """Names of the records the user may ``action`` (asked about every record)."""
    by_id = {r["id"]: r["name"] for r in site.records.list(module, SYSTEM_USER,
                                                          Query(fields=["name"], limit=None))}
    return sorted(by_id[i] for i in site.records.allowed(module, list(by_id), user, action))


def role(site, name, module_levels: dict, access="enabled", module="accounts"):
    role_id = aa.create_role(site, name)
    aa.set_role_rules(site, role_id, {module: (access, module_levels)})
    return role_id


def account(site, name, owner, teams=()):
    record = site.records.create("accounts", {"name": name, "assigned_user_id": owner.id},
                                 SYSTEM_USER, teams=teams)
    return record["id"]


@pytest.fixture
def org(site, admin):
    """Sales and Support teams; one user in each; accounts owned by each and by nobody."""
    aa.save_settings(site, {"inherit_created_by": False})
    sales, support = aa.create_team(site, "Sales"), aa.create_team(site, "Support")
    sam, sue, nick = make_user(site, "sam"), make_user(site, "sue"), make_user(site, "nick")
    aa.set_team_members(site, sales, add=[sam.id])
    aa.set_team_members(site, support, add=[sue.id])
    account(site, "Acme (sales)", admin, [sales])
    account(site, "Bolt (support)", admin, [support])
    account(site, "Crane (both)", admin, [sales, support])
    account(site, "Dune (no team)", admin)
    account(site, "Echo (sam's own)", sam)
    return {"sales": sales, "support": support, "sam": sam, "sue": sue, "nick": nick,
            "admin": admin}


ALL_NAMES = ["Acme (sales)", "Bolt (support)", "Crane (both)", "Dune (no team)",
             "Echo (sam's own)"]
TEAM_ONLY = {"view": "team", "list": "team", "edit": "team", "delete": "team",
             "export": "team", "report": "team"}


# -- 7.3.7 worked examples -----------------------------------------------------------------

def test_no_security_everyone_sees_everything(org, site):
    """No roles, no teams linked to roles: the Default Role (all) applies to everyone."""
    for who in ("sam", "sue", "nick"):
        assert names(site, org[who]) == ALL_NAMES
        assert allowed(site, org[who], "edit") == ALL_NAMES
        assert allowed(site, org[who], "delete") == ALL_NAMES


def test_each_user_on_one_team_with_one_role(org, site):
    sales_role = role(site, "Sales", TEAM_ONLY)
    support_role = role(site, "Support", TEAM_ONLY)
    aa.set_role_teams(site, sales_role, add=[org["sales"]])
    aa.set_role_teams(site, support_role, add=[org["support"]])
    assert names(site, org["sam"]) == ["Acme (sales)", "Crane (both)", "Echo (sam's own)"]
    assert names(site, org["sue"]) == ["Bolt (support)", "Crane (both)"]
    assert names(site, org["nick"]) == ALL_NAMES  # in no team: still the Default Role
    bolt = next(r["id"] for r in site.records.list("accounts", SYSTEM_USER, Query(
        search="Bolt")))
    with pytest.raises(NotFoundError):
        site.records.get("accounts", bolt, org["sam"])
    with pytest.raises(NotFoundError):
        site.records.update("accounts", bolt, {"name": "Hijacked"}, org["sam"])
    with pytest.raises(NotFoundError):
        site.records.delete("accounts", bolt, org["sam"])
    assert site.records.get("accounts", bolt, SYSTEM_USER)["name"] == "Bolt (support)"


@pytest.mark.parametrize("additive, deletable", [
    (True, ["Acme (sales)", "Crane (both)", "Echo (chris's own)"]),
    (False, []),
])
def test_additive_rights_chris_in_sales_and_support(site, admin, additive, deletable):
    """Sales' role: Delete - Team; Support's role: Delete - None (guide 7.3.7)."""
    aa.save_settings(site, {"additive": additive, "inherit_created_by": False})
    sales, support = aa.create_team(site, "Sales"), aa.create_team(site, "Support")
    chris = make_user(site, "chris")
    aa.set_user_teams(site, chris.id, [sales, support])
    aa.set_role_teams(site, role(site, "Sales", {"delete": "team"}), add=[sales])
    aa.set_role_teams(site, role(site, "Support", {"delete": "none"}), add=[support])
    account(site, "Acme (sales)", admin, [sales])
    account(site, "Bolt (elsewhere)", admin)
    account(site, "Crane (both)", admin, [sales, support])
    account(site, "Echo (chris's own)", chris)
    assert allowed(site, chris, "delete") == deletable
    assert len(names(site, chris)) == 4  # both roles list everything
    assert site.records.delete_many("accounts", [r["id"] for r in site.records.list(
        "accounts", admin, Query(limit=None))], chris) == len(deletable)


def test_manager_with_read_only_team_role_and_a_direct_edit_role(site, admin):
    aa.save_settings(site, {"inherit_created_by": False})
    team_a, team_b = aa.create_team(site, "Team A"), aa.create_team(site, "Team B")
    manager, alice = make_user(site, "manager"), make_user(site, "alice")
    aa.set_user_teams(site, manager.id, [team_a, team_b])
    aa.set_user_teams(site, alice.id, [team_a])
    read_only = role(site, "Read Only", {"view": "team", "list": "team", "edit": "none",
                                         "delete": "none", "export": "none", "report": "team"})
    aa.set_role_teams(site, read_only, add=[team_a, team_b])
    account(site, "A1", admin, [team_a])
    account(site, "B1", admin, [team_b])
    account(site, "Other", admin)
    assert names(site, manager) == ["A1", "B1"]
    assert allowed(site, manager, "edit") == []
    edit = role(site, "Edit", {"view": "team", "list": "team", "edit": "team"})
    aa.set_role_users(site, edit, add=[manager.id])
    assert allowed(site, manager, "edit") == ["A1", "B1"]
    assert allowed(site, alice, "edit") == []  # the team's members keep read-only
    a1 = next(r["id"] for r in site.records.list("accounts", admin, Query(search="A1")))
    assert site.records.update("accounts", a1, {"phone_office": "555"}, manager)["phone_office"] == "555"


# -- the rules of a role (7.3.3) -----------------------------------------------------------

def test_limited_access_forces_admin_and_import_is_all_or_none():
    rule = check_rule("limited", {"view": "team", "list": "owner", "edit": "all",
                                  "delete": "team", "export": "all", "report": "all",
                                  "import": "all"})
    assert {a: rule.level(a) for a in ("view", "list")} == {"view": "team", "list": "owner"}
    assert {rule.level(a) for a in ("edit", "delete", "export", "report", "import")} == {"admin"}
    with pytest.raises(ValidationError) as exc:
        check_rule("enabled", {"import": "team", "view": "everything"})
    assert set(exc.value.errors) == {"import", "view"}
    with pytest.raises(ValidationError):
        check_rule("sometimes", {})


def test_prerequisites_fall_with_what_they_need():
    rule = check_rule("enabled", {"view": "none", "list": "all", "edit": "team",
                                  "export": "all", "approve": "all"})
    assert {rule.level(a) for a in ("list", "edit", "delete", "export", "report",
                                    "approve", "personal")} == {"none"}
    rule = check_rule("enabled", {"list": "none", "export": "all", "report": "team"})
    assert (rule.level("export"), rule.level("report"), rule.level("edit")) == \
        ("none", "none", "all")


def test_an_action_never_reaches_beyond_its_prerequisite(org, site):
    """Edit All with View Team: only what the user can view can be edited."""
    aa.set_role_users(site, role(site, "Wide edit", {"view": "team", "list": "team",
                                                     "edit": "all"}), add=[org["sam"].id])
    assert allowed(site, org["sam"], "edit") == ["Acme (sales)", "Crane (both)",
                                                 "Echo (sam's own)"]


def test_limited_module_lets_users_see_but_not_change(org, site):
    aa.set_role_users(site, role(site, "Viewer", {"view": "all", "list": "all"},
                                 access="limited"), add=[org["sue"].id])
    assert names(site, org["sue"]) == ALL_NAMES
    assert allowed(site, org["sue"], "edit") == allowed(site, org["sue"], "export") == []
    assert site.access.mode(org["sue"], site.registry.module("accounts")) == "limited"


def test_disabled_module_is_gone(org, site):
    aa.set_role_users(site, role(site, "No accounts", {}, access="disabled"),
                      add=[org["sue"].id])
    module = site.registry.module("accounts")
    assert site.access.mode(org["sue"], module) == "disabled"
    assert names(site, org["sue"]) == []
    assert not site.access.can(org["sue"], module, "view")
    assert site.access.mode(org["sam"], module) == "enabled"


def test_owner_and_role_levels(org, site):
    owner_role = role(site, "Own only", {"view": "owner", "list": "owner"})
    aa.set_role_users(site, owner_role, add=[org["sam"].id])
    assert names(site, org["sam"]) == ["Echo (sam's own)"]
    # Role level: records assigned to anyone holding the role (sue joins it)
    peers = role(site, "Peers", {"view": "role", "list": "role"})
    aa.set_role_users(site, peers, add=[org["sue"].id, org["sam"].id])
    aa.set_role_users(site, owner_role, remove=[org["sam"].id])
    account(site, "Fig (sue's own)", org["sue"])
    assert names(site, org["sam"]) == ["Echo (sam's own)", "Fig (sue's own)"]
    assert names(site, org["nick"]) == ALL_NAMES + ["Fig (sue's own)"]


def test_admins_see_everything_except_hr(site, admin):
    make = site.records.create
    make("payslips", {"name": "March", "assigned_user_id": admin.id}, admin)
    hr_role = role(site, "No payslips", {}, access="disabled", module="payslips")
    assert len(site.records.list("payslips", admin)) == 1  # Default Role: all
    aa.set_role_users(site, hr_role, add=[admin.id])
    assert site.records.list("payslips", admin) == []
    assert site.access.mode(admin, site.registry.module("payslips")) == "disabled"
    assert site.access.mode(admin, site.registry.module("accounts")) == "enabled"
    hr_admin_only = role(site, "HR admin", {"view": "admin", "list": "admin"},
                         module="payslips")
    aa.set_role_users(site, hr_role, remove=[admin.id])
    aa.set_role_users(site, hr_admin_only, add=[admin.id])
    assert len(site.records.list("payslips", admin)) == 1  # "admin" level: admins only


def test_a_private_module_is_each_owners_alone_admins_included(org, site, admin):
    sue, sam = org["sue"], org["sam"]
    mine = site.records.create("diaries", {"name": "Sue's", "assigned_user_id": sue.id}, sue)
    site.records.create("diaries", {"name": "Admin's", "assigned_user_id": admin.id}, admin)
    diaries = site.registry.module("diaries")
    everything = role(site, "Everything", {a: "all" for a in ("view", "list", "edit")},
                      module="diaries")
    aa.set_role_users(site, everything, add=[sam.id])
    assert names(site, sue, "diaries") == ["Sue's"]
    assert names(site, sam, "diaries") == []  # "all" in a role does not widen it
    assert names(site, admin, "diaries") == ["Admin's"]
    with pytest.raises(NotFoundError):
        site.records.get("diaries", mine["id"], admin)
    assert site.access.restricts(admin, diaries, "view")
    assert site.records.count("diaries", sam) == 0
    closed = role(site, "No diaries", {}, access="disabled", module="diaries")
    aa.set_role_users(site, closed, add=[sue.id])
    assert names(site, sue, "diaries") == []  # a role may narrow it


def test_data_privacy_manager_may_erase_personal_data(org, site):
    contacts = site.registry.module("contacts")
    assert not site.access.can(org["sam"], contacts, "personal")
    dpm = next(r["id"] for r in aa.roles(site) if r["builtin"] == "dpm")
    aa.set_role_users(site, dpm, add=[org["sam"].id])
    assert site.access.can(org["sam"], contacts, "personal")


# -- record denies, delegation, teams on records -------------------------------------------

def test_deny_one_record_to_a_user_or_a_team(org, site):
    acme = next(r["id"] for r in site.records.list("accounts", org["admin"], Query(
        search="Acme")))
    aa.add_deny(site, "accounts", acme, user_id=org["sue"].id)
    assert "Acme (sales)" not in names(site, org["sue"])
    assert "Acme (sales)" in names(site, org["sam"])
    aa.add_deny(site, "accounts", acme, team_id=org["sales"])
    assert "Acme (sales)" not in names(site, org["sam"])
    assert "Acme (sales)" in names(site, org["nick"])
    assert "Acme (sales)" in names(site, org["admin"])  # admins are never locked out
    with pytest.raises(ValidationError):
        aa.add_deny(site, "accounts", acme)
    for deny in aa.denies_of(site, "accounts", acme):
        aa.remove_deny(site, deny["id"])
    assert "Acme (sales)" in names(site, org["sam"])


def test_team_inheritance_rules(site, admin):
    sales, support = aa.create_team(site, "Sales"), aa.create_team(site, "Support")
    private = aa.create_team(site, "Board", non_inheritable=True)
    maker, owner = make_user(site, "maker"), make_user(site, "owner")
    aa.set_user_teams(site, maker.id, [sales, private])
    aa.set_user_teams(site, owner.id, [support])

    def teams_of_new(values, module="accounts", teams=()):
        record = site.records.create(module, values, maker, teams=teams)
        return sorted(site.records.teams_of(module, [record["id"]])[record["id"]])

    # default: created-by on (the non-inheritable Board team is not passed on)
    assert teams_of_new({"name": "One", "assigned_user_id": owner.id}) == [sales]
    aa.save_settings(site, {"inherit_assigned": True})
    assert teams_of_new({"name": "Two", "assigned_user_id": owner.id}) == sorted([sales, support])
    aa.save_settings(site, {"inherit_created_by": False, "inherit_assigned": False})
    assert teams_of_new({"name": "Three"}, teams=[private]) == [private]
    parent = site.records.create("accounts", {"name": "Parent"}, admin, teams=[support, private])
    aa.save_settings(site, {"inherit_related": True})
    assert teams_of_new({"last_name": "Child", "account_id": parent["id"]},
                        module="contacts") == [support]


def test_mass_assign_teams_only_touches_editable_records(org, site):
    sales_role = role(site, "Sales", TEAM_ONLY)
    aa.set_role_teams(site, sales_role, add=[org["sales"]])
    everything = [r["id"] for r in site.records.list("accounts", org["admin"], Query(limit=None))]
    extra = aa.create_team(site, "Extra")
    assert site.records.set_teams("accounts", everything, org["sam"], add=[extra]) == 3
    assert site.records.set_teams("accounts", everything, org["admin"], remove=[extra]) == 5
    assert all(extra not in teams for teams in site.records.teams_of("accounts",
                                                                      everything).values())
    with pytest.raises(ValidationError):
        site.records.set_teams("accounts", everything, org["admin"], add=["no-such-team"])


def test_grants_follow_changes_made_by_another_worker(org, site, make_site):
    """Two site objects on one database = two workers: a role change in one is obeyed by
    the other on its next read (the access epoch)."""
    other = make_site()
    assert names(other, org["sam"]) == ALL_NAMES
    aa.set_role_teams(site, role(site, "Sales", TEAM_ONLY), add=[org["sales"]])
    assert names(other, org["sam"]) == ["Acme (sales)", "Crane (both)", "Echo (sam's own)"]


def test_names_are_checked_and_builtins_stay(site):
    aa.create_team(site, "Sales")
    with pytest.raises(ValidationError) as exc:
        aa.create_team(site, " sales ")
    assert "name" in exc.value.errors
    with pytest.raises(ValidationError):
        aa.create_role(site, "   ")
    default = next(r for r in aa.roles(site) if r["builtin"] == "default")
    with pytest.raises(ValidationError):
        aa.delete_role(site, default["id"])
    with pytest.raises(ValidationError) as exc:
        aa.set_role_rules(site, default["id"], {"accounts": ("enabled", {"edit": "most"}),
                                                "nonsense": ("enabled", {})})
    assert set(exc.value.errors) == {"accounts.edit", "nonsense"}
    assert aa.role_rules(site, default["id"]) == {}


def test_an_admin_only_prerequisite_does_not_widen_an_action_for_admins(site, admin):
    """Found by the property test: in an hr module with View Admin and Delete Owner, an
    administrator may view every payslip but delete only their own."""
    mine = site.records.create("payslips", {"name": "Mine", "assigned_user_id": admin.id}, admin)
    other = site.records.create("payslips", {"name": "Theirs", "assigned_user_id": None}, admin)
    default = next(r["id"] for r in aa.roles(site) if r["builtin"] == "default")
    stored = aa.set_role_rules(site, default, {"payslips": ("enabled", {
        "view": "admin", "list": "admin", "delete": "owner"})})
    assert stored["payslips"].level("delete") == "owner"
    ids = [mine["id"], other["id"]]
    assert site.records.allowed("payslips", ids, admin, "view") == set(ids)
    assert site.records.allowed("payslips", ids, admin, "delete") == {mine["id"]}
