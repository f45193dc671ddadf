"""The administration screens: users, teams, roles (with the module x action matrix) and
the access control settings (implementation guide 7.3), with who may export (guide §7.1.2's
export settings, kept by core/web/exporting.py).

Administrators may do everything here. A user with delegation (``can_assign_access``)
may open the index, the user list, the teams and roles checkboxes of a user's page, the
team list and a team's members; everything else answers 403 to them, and to everyone
else every page here answers 403, before anything is looked up.

Every form posts to its own URL and redirects (303) after a successful change; a refused
change re-renders the page with the errors and the values as sent (422), having stored
nothing. Generated passwords are shown once in the response, never put in the session.
"""
from __future__ import annotations

from urllib.parse import urlencode

import sqlalchemy as sa
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

from core.apps.admin import access_admin
from core.apps.admin import plugins_web as admin_plugins
from core.apps.field_types.types import BUILTIN_TYPES
from core.apps.packs import web as admin_packs
from core.kernel import access, users
from core.kernel.errors import N_, Message, ValidationError
from core.kernel.fields import FieldError
from core.kernel.hooktypes import AdminLink
from core.web import exporting
from core.web.pages import page
from core.web.templating import flash

PAGE_SIZE = 50
NO_STORE = {"Cache-Control": "no-store"}
FORBIDDEN = N_("You are not allowed to open this page.")

# the matrix's columns, in the order of the guide's role screen
MATRIX_ACTIONS = ("view", "list", "edit", "delete", "import", "export", "report", "approve",
                  "personal")
assert set(MATRIX_ACTIONS) == set(access.ACTIONS)
ACTION_LABELS = {"access": N_("Access"), "view": N_("View"), "list": N_("List"),
                 "edit": N_("Edit"), "delete": N_("Delete"), "import": N_("Import"),
                 "export": N_("Export"), "report": N_("Report"), "approve": N_("Approve"),
                 "personal": N_("Personal")}
LEVEL_LABELS = {"none": N_("None"), "admin": N_("Admin"), "owner": N_("Owner"),
                "role": N_("Role"), "team": N_("Team"), "all": N_("All")}
MODE_LABELS = {"enabled": N_("Enabled"), "limited": N_("Limited"), "disabled": N_("Disabled")}
SETTING_LABELS = {
    "additive": (N_("Additive rights"),
                 N_("On: users get the broadest rights of all their roles (their own and "
                    "their teams'). Off: the narrowest.")),
    "inherit_created_by": (N_("Inherit from the Created By user"),
                           N_("A new record gets the teams of the user who creates it.")),
    "inherit_assigned": (N_("Inherit from the Assigned To user"),
                         N_("A new record gets the teams of the user it is assigned to.")),
    "inherit_related": (N_("Inherit from the related record"),
                        N_("A new record gets the teams of the record it belongs to, such "
                           "as a contact's account.")),
}
assert set(SETTING_LABELS) == set(access.DEFAULT_SETTINGS)

REQUIRED = N_("is required")
TAKEN = N_("%(name)s is already taken")
BAD_USERNAME = N_("Use letters, digits and . _ @ - only (at most 60 characters), starting "
                  "with a letter or digit.")


# -- who may ------------------------------------------------------------------------------

def _forbidden() -> HTTPException:
    return HTTPException(403, Message(FORBIDDEN))


def _is_delegate(user) -> bool:
    return bool(getattr(user, "can_assign_access", False))


def _admin_only(request: Request):
    user = request.state.user
    if not user.is_admin:
        raise _forbidden()
    return user


def _admin_or_delegate(request: Request):
    user = request.state.user
    if not (user.is_admin or _is_delegate(user)):
        raise _forbidden()
    return user


# -- helpers ------------------------------------------------------------------------------

def _site(request: Request):
    return request.app.state.site


def _render(request: Request, name: str, status: int = 200, **context):
    response = request.app.state.templates.render(request, name, status=status, **context)
    response.headers.update(NO_STORE)
    return response


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _text(form, name: str) -> str:
    return " ".join(str(form.get(name, "") or "").split())


def _checked(form, name: str) -> bool:
    return str(form.get(name, "")) in ("1", "on", "true")


def _ids(form, name: str) -> list[str]:
    return [str(v) for v in form.getlist(name) if str(v)]


def _email(value: str, errors: dict) -> str | None:
    if not value:
        return None
    try:
        return BUILTIN_TYPES["email"].check_text(value, {})
    except FieldError as exc:
        errors["email"] = exc.message
        return value


def _password_problem(password: str, username: str) -> Message | None:
    problem = users.password_problem(password, username)
    return Message(problem, min=users.MIN_PASSWORD) if problem else None


def _set_diff(form, name: str) -> tuple[list[str], list[str]]:
    """(add, remove) from a checkbox list: the boxes ticked, and those shown (hidden
    ``<name>_shown`` inputs) but not ticked. Only what the page showed is removed, so a
    change someone made meanwhile to what this page did not show stays."""
    ticked = set(_ids(form, name))
    shown = set(_ids(form, f"{name}_shown"))
    return sorted(ticked), sorted(shown - ticked)


def _new_set(form, name: str, current) -> set[str]:
    add, remove = _set_diff(form, name)
    return (set(current) - set(remove)) | set(add)


def _team_items(teams: list[dict]) -> list[tuple[str, str, str]]:
    return [(t["id"], t["name"], N_("not inheritable") if t["non_inheritable"] else "")
            for t in teams]


def _role_items(roles: list[dict]) -> list[tuple[str, str, str]]:
    return [(r["id"], r["name"], N_("built in") if r["builtin"] else "") for r in roles]


def _user_items(people: list[dict]) -> list[tuple[str, str, str]]:
    return [(u["id"], f"{u['display_name'] or u['username']} ({u['username']})",
             "" if u["active"] else N_("inactive")) for u in people]


# -- the index ----------------------------------------------------------------------------

@page()
def index(request: Request, form):
    user = _admin_or_delegate(request)
    links = [(N_("Users"), "/admin/users", N_("Create users, reset passwords, give teams "
                                              "and roles.")),
             (N_("Teams"), "/admin/teams", N_("Groups of users; records belong to teams."))]
    plugin_links = []
    if user.is_admin:
        links += [(N_("Roles"), "/admin/roles", N_("What each role may do in each module.")),
                  (N_("Access control settings"), "/admin/access",
                   N_("Additive rights and team inheritance."))]
        site = _site(request)
        for contributed in site.hook.crbm_admin_links(site=site):
            for link in contributed or ():  # the applications' come first (tryfirst)
                if isinstance(link, AdminLink):
                    links.append((link.label, link.url, link.hint))
                else:
                    plugin_links.append(tuple(link))
    return _render(request, "admin_index.html", links=links, plugin_links=plugin_links)


# -- users --------------------------------------------------------------------------------

@page()
def user_list(request: Request, form):
    _admin_or_delegate(request)
    search = request.query_params.get("q", "").strip()[:100]
    try:
        number = max(1, int(request.query_params.get("page", "1")))
    except ValueError:
        number = 1
    rows, total = access_admin.users_overview(_site(request), search,
                                              (number - 1) * PAGE_SIZE, PAGE_SIZE)
    pages = max(1, -(-total // PAGE_SIZE))

    def link(n: int) -> str:
        return "/admin/users?" + urlencode({k: v for k, v in (("q", search), ("page", n)) if v})

    return _render(request, "admin_users.html", rows=rows, total=total, search=search,
                   page_number=number, pages=pages,
                   previous=link(number - 1) if number > 1 else None,
                   next=link(number + 1) if number < pages else None)


def _username_taken(site, username: str) -> bool:
    table = site.tables.tables["crbm_users"]
    with site.engine.connect() as conn:
        return conn.execute(sa.select(table.c.id).where(
            sa.func.lower(table.c.username) == username.lower())).first() is not None


@page()
def user_new(request: Request, form):
    _admin_only(request)
    if form is None:
        return _render(request, "admin_user_new.html", values={}, errors={})
    site = _site(request)
    values = {"username": str(form.get("username", "")).strip(),
              "display_name": _text(form, "display_name"), "email": _text(form, "email"),
              "is_admin": _checked(form, "is_admin")}
    password = str(form.get("password", ""))
    errors: dict = {}
    if not values["username"]:
        errors["username"] = Message(REQUIRED)
    elif not users.USERNAME_RE.match(values["username"]):
        errors["username"] = Message(BAD_USERNAME)
    elif _username_taken(site, values["username"]):
        errors["username"] = Message(TAKEN, name=repr(values["username"]))
    email = _email(values["email"], errors)
    generated = not password
    if generated:
        password = users.generate_password()
    elif "username" not in errors:
        problem = _password_problem(password, values["username"])
        if problem:
            errors["password"] = problem
    if not errors:
        try:
            created = users.create_user(site, values["username"], password,
                                        is_admin=values["is_admin"],
                                        display_name=values["display_name"] or None,
                                        email=email, must_change_password=True)
        except users.UserError as exc:  # e.g. the same name created meanwhile
            errors["username"] = str(exc)
    if errors:
        return _render(request, "admin_user_new.html", status=422, values=values,
                       errors=errors)
    if not generated:
        flash(request, Message(N_("User %(name)s was created."), name=created.username))
        return _redirect(f"/admin/users/{created.id}")
    return _user_page(request, created.id, notice=Message(
        N_("User %(name)s was created."), name=created.username), new_password=password)


def _user_page(request: Request, user_id: str, status: int = 200, errors=None,
               values=None, notice=None, new_password=None):
    site, me = _site(request), request.state.user
    target = access_admin.get_user(site, user_id)
    return _render(request, "admin_user.html", status=status, target=target,
                   values=values or target, errors=errors or {}, notice=notice,
                   new_password=new_password, full=me.is_admin, is_self=target["id"] == me.id,
                   team_items=_team_items(access_admin.teams(site)),
                   managers=[u for u in access_admin.user_choices(site) if u["id"] != user_id],
                   role_items=_role_items(_ordered_roles(site)),
                   user_teams=set(access_admin.user_teams(site, user_id)),
                   user_roles=set(access_admin.user_roles(site, user_id)))


@page()
def user_detail(request: Request, form):
    _admin_or_delegate(request)
    return _user_page(request, request.path_params["id"])


@page()
def user_profile(request: Request, form):
    me = _admin_only(request)
    site, user_id = _site(request), request.path_params["id"]
    target = access_admin.get_user(site, user_id)
    values = {**target, "display_name": _text(form, "display_name"),
              "email": _text(form, "email"), "is_admin": _checked(form, "is_admin"),
              "can_assign_access": _checked(form, "can_assign_access"),
              "reports_to_id": _text(form, "reports_to_id") or None,
              "department": _text(form, "department") or None}
    errors: dict = {}
    email = _email(values["email"], errors)
    if target["id"] == me.id and not values["is_admin"]:
        errors["is_admin"] = Message(N_("You cannot remove your own administrator rights."))
    if not errors:
        try:
            access_admin.update_user_profile(
                site, user_id, display_name=values["display_name"], email=email,
                is_admin=values["is_admin"], can_assign_access=values["can_assign_access"],
                reports_to_id=values["reports_to_id"], department=values["department"])
        except ValidationError as exc:
            errors.update(exc.errors)
    if errors:
        return _user_page(request, user_id, status=422, errors=errors, values=values)
    flash(request, N_("The user was saved."))
    return _redirect(f"/admin/users/{user_id}")


@page()
def user_active(request: Request, form):
    me = _admin_only(request)
    site, user_id = _site(request), request.path_params["id"]
    target = access_admin.get_user(site, user_id)
    active = _checked(form, "active")
    if target["id"] == me.id and not active:
        return _user_page(request, user_id, status=422, errors={
            "active": Message(N_("You cannot deactivate yourself."))})
    users.set_active(site, target["username"], active)
    flash(request, Message(N_("%(name)s can sign in again."), name=target["username"])
          if active else Message(N_("%(name)s was deactivated and signed out."),
                                 name=target["username"]))
    return _redirect(f"/admin/users/{user_id}")


@page()
def user_password(request: Request, form):
    _admin_only(request)
    site, user_id = _site(request), request.path_params["id"]
    target = access_admin.get_user(site, user_id)
    if target["auth_source"] != "local":
        return _user_page(request, user_id, status=422, errors={"password": Message(N_(
            "This user signs in through %(source)s; change the password there."),
            source=target["auth_source"])})
    password = str(form.get("password", ""))
    generated = not password
    if generated:
        password = users.generate_password()
    else:
        problem = _password_problem(password, target["username"])
        if problem:
            return _user_page(request, user_id, status=422, errors={"password": problem})
    users.set_password(site, target["username"], password, must_change=True)
    notice = Message(N_("The password was changed; %(name)s must choose a new one at the "
                        "next sign-in."), name=target["username"])
    if generated:
        return _user_page(request, user_id, notice=notice, new_password=password)
    flash(request, notice)
    return _redirect(f"/admin/users/{user_id}")


@page()
def user_access(request: Request, form):
    _admin_or_delegate(request)
    site, user_id = _site(request), request.path_params["id"]
    access_admin.get_user(site, user_id)  # 404 for an unknown user
    access_admin.set_user_teams(site, user_id, _new_set(
        form, "teams", access_admin.user_teams(site, user_id)))
    access_admin.set_user_roles(site, user_id, _new_set(
        form, "roles", access_admin.user_roles(site, user_id)))
    flash(request, N_("Teams and roles saved."))
    return _redirect(f"/admin/users/{user_id}")


# -- teams --------------------------------------------------------------------------------

@page()
def team_list(request: Request, form):
    _admin_or_delegate(request)
    return _render(request, "admin_teams.html", teams=access_admin.teams(_site(request)))


def _team_values(form) -> dict:
    return {"name": _text(form, "name"), "description": str(form.get("description", "")).strip(),
            "non_inheritable": _checked(form, "non_inheritable")}


@page()
def team_new(request: Request, form):
    _admin_only(request)
    if form is None:
        return _render(request, "admin_team_new.html", values={}, errors={})
    values = _team_values(form)
    try:
        team_id = access_admin.create_team(_site(request), **values)
    except ValidationError as exc:
        return _render(request, "admin_team_new.html", status=422, values=values,
                       errors=exc.errors)
    flash(request, Message(N_("Team %(name)s was created."), name=values["name"]))
    return _redirect(f"/admin/teams/{team_id}")


def _team_page(request: Request, team_id: str, status: int = 200, errors=None, values=None):
    site = _site(request)
    team = access_admin.get_team(site, team_id)
    members = set(access_admin.team_members(site, team_id))
    people = access_admin.user_choices(site)
    return _render(request, "admin_team.html", status=status, team=team,
                   values=values or team, errors=errors or {}, full=request.state.user.is_admin,
                   members=members,
                   member_items=_user_items([u for u in people if u["id"] in members]),
                   candidate_items=_user_items([u for u in people
                                                if u["id"] not in members and u["active"]]),
                   role_items=_role_items(_ordered_roles(site)),
                   team_roles=set(access_admin.team_roles(site, team_id)))


@page()
def team_detail(request: Request, form):
    _admin_or_delegate(request)
    return _team_page(request, request.path_params["id"])


@page()
def team_edit(request: Request, form):
    _admin_only(request)
    team_id, values = request.path_params["id"], _team_values(form)
    try:
        access_admin.update_team(_site(request), team_id, **values)
    except ValidationError as exc:
        return _team_page(request, team_id, status=422, errors=exc.errors, values=values)
    flash(request, N_("The team was saved."))
    return _redirect(f"/admin/teams/{team_id}")


@page()
def team_members(request: Request, form):
    _admin_or_delegate(request)
    team_id = request.path_params["id"]
    add, remove = _set_diff(form, "members")
    access_admin.set_team_members(_site(request), team_id, add=add, remove=remove)
    flash(request, N_("The members were saved."))
    return _redirect(f"/admin/teams/{team_id}")


@page()
def team_roles(request: Request, form):
    _admin_only(request)
    site, team_id = _site(request), request.path_params["id"]
    access_admin.set_team_roles(site, team_id, _new_set(
        form, "roles", access_admin.team_roles(site, team_id)))
    flash(request, N_("The team's roles were saved."))
    return _redirect(f"/admin/teams/{team_id}")


@page()
def team_delete(request: Request, form):
    _admin_only(request)
    site, team_id = _site(request), request.path_params["id"]
    team = access_admin.get_team(site, team_id)
    access_admin.delete_team(site, team_id)
    flash(request, Message(N_("Team %(name)s was deleted."), name=team["name"]))
    return _redirect("/admin/teams")


# -- roles --------------------------------------------------------------------------------

def _ordered_roles(site) -> list[dict]:
    """The Default Role, the Data Privacy Manager, then the others by name."""
    order = {"default": 0, "dpm": 1}
    return sorted(access_admin.roles(site), key=lambda r: (order.get(r["builtin"], 2),
                                                           r["name"].lower()))


@page()
def role_list(request: Request, form):
    _admin_only(request)
    return _render(request, "admin_roles.html", roles=_ordered_roles(_site(request)))


def _role_values(form) -> dict:
    return {"name": _text(form, "name"), "description": str(form.get("description", "")).strip()}


@page()
def role_new(request: Request, form):
    _admin_only(request)
    if form is None:
        return _render(request, "admin_role_new.html", values={}, errors={})
    values = _role_values(form)
    try:
        role_id = access_admin.create_role(_site(request), **values)
    except ValidationError as exc:
        return _render(request, "admin_role_new.html", status=422, values=values,
                       errors=exc.errors)
    flash(request, Message(N_("Role %(name)s was created."), name=values["name"]))
    return _redirect(f"/admin/roles/{role_id}")


def _stored_matrix(site, role: dict) -> dict[str, dict[str, str]]:
    """module -> {"access": ..., action: level} as stored, or the role's defaults."""
    rules = access_admin.role_rules(site, role["id"])
    fallback = access.PRIVACY_RULE if role["builtin"] == "dpm" else access.DEFAULT_RULE
    out = {}
    for name in site.registry.modules:
        rule = rules.get(name, fallback)
        out[name] = {"access": rule.access, **{a: rule.level(a) for a in access.ACTIONS}}
    return out


def _role_page(request: Request, role_id: str, status: int = 200, errors=None, values=None,
               matrix=None, matrix_errors=None):
    site = _site(request)
    role = access_admin.get_role(site, role_id)
    holders = set(access_admin.role_users(site, role_id))
    people = access_admin.user_choices(site)
    return _render(
        request, "admin_role.html", status=status, role=role, values=values or role,
        errors=errors or {}, modules=list(site.registry.modules.values()),
        matrix=matrix or _stored_matrix(site, role), matrix_errors=matrix_errors or {},
        actions=MATRIX_ACTIONS, action_labels=ACTION_LABELS, level_labels=LEVEL_LABELS,
        mode_labels=MODE_LABELS, levels=access.LEVELS, import_levels=access.IMPORT_LEVELS,
        modes=access.ACCESS_MODES,
        holders=holders, holder_items=_user_items([u for u in people if u["id"] in holders]),
        candidate_items=_user_items([u for u in people
                                     if u["id"] not in holders and u["active"]]),
        team_items=_team_items(access_admin.teams(site)),
        role_teams=set(access_admin.role_teams(site, role_id)))


@page()
def role_detail(request: Request, form):
    _admin_only(request)
    return _role_page(request, request.path_params["id"])


@page()
def role_edit(request: Request, form):
    _admin_only(request)
    role_id, values = request.path_params["id"], _role_values(form)
    try:
        access_admin.update_role(_site(request), role_id, **values)
    except ValidationError as exc:
        return _role_page(request, role_id, status=422, errors=exc.errors, values=values)
    flash(request, N_("The role was saved."))
    return _redirect(f"/admin/roles/{role_id}")


@page()
def role_matrix(request: Request, form):
    _admin_only(request)
    site, role_id = _site(request), request.path_params["id"]
    role = access_admin.get_role(site, role_id)
    posted: dict[str, tuple[str, dict[str, str]]] = {}
    shown = _stored_matrix(site, role)
    for name in site.registry.modules:
        cells = {key: str(form.get(f"{name}.{key}")) for key in ("access", *access.ACTIONS)
                 if form.get(f"{name}.{key}") is not None}
        if not cells:
            continue  # a module the page did not show (added since): left as it is
        shown[name].update(cells)
        mode = cells.get("access", shown[name]["access"])
        levels = {a: cells[a] for a in access.ACTIONS if a in cells}
        posted[name] = (mode, levels)
    try:
        stored = access_admin.set_role_rules(site, role_id, posted)
    except ValidationError as exc:
        return _role_page(request, role_id, status=422, matrix=shown, matrix_errors=exc.errors)
    adjusted = [site.registry.modules[name].label for name in posted
                if any(stored[name].level(a) != shown[name][a] for a in access.ACTIONS
                       if form.get(f"{name}.{a}") is not None)]
    if adjusted:
        flash(request, Message(N_("The matrix was saved. Some cells were adjusted to follow "
                                  "the rules (limited access, prerequisites): %(modules)s."),
                               modules=", ".join(adjusted)))
    else:
        flash(request, N_("The matrix was saved."))
    return _redirect(f"/admin/roles/{role_id}#matrix")


@page()
def role_users(request: Request, form):
    _admin_only(request)
    role_id = request.path_params["id"]
    add, remove = _set_diff(form, "users")
    access_admin.set_role_users(_site(request), role_id, add=add, remove=remove)
    flash(request, N_("The role's users were saved."))
    return _redirect(f"/admin/roles/{role_id}")


@page()
def role_teams(request: Request, form):
    _admin_only(request)
    site, role_id = _site(request), request.path_params["id"]
    add, remove = _set_diff(form, "teams")
    access_admin.set_role_teams(site, role_id, add=add, remove=remove)
    flash(request, N_("The role's teams were saved."))
    return _redirect(f"/admin/roles/{role_id}")


@page()
def role_delete(request: Request, form):
    _admin_only(request)
    site, role_id = _site(request), request.path_params["id"]
    role = access_admin.get_role(site, role_id)
    try:
        access_admin.delete_role(site, role_id)
    except ValidationError as exc:
        return _role_page(request, role_id, status=422, errors=exc.errors)
    flash(request, Message(N_("Role %(name)s was deleted."), name=role["name"]))
    return _redirect("/admin/roles")


# -- access control settings --------------------------------------------------------------

@page()
def access_settings(request: Request, form):
    _admin_only(request)
    site = _site(request)
    if form is not None:
        access_admin.save_settings(site, {key: _checked(form, key)
                                          for key in access.DEFAULT_SETTINGS})
        who = str(form.get("export_who", ""))  # (a form without it keeps the setting)
        if who in exporting.WHO and who != exporting.export_who(site):
            exporting.save_export_who(site, who)
        flash(request, N_("The access control settings were saved."))
        return _redirect("/admin/access")
    return _render(request, "admin_access.html", values=access.settings_of(site.settings),
                   labels=SETTING_LABELS, defaults=access.DEFAULT_SETTINGS,
                   export_who=exporting.export_who(site), export_choices=exporting.WHO_LABELS)


routes = [
    Route("/admin", index),
    Route("/admin/users", user_list),
    Route("/admin/users/new", user_new, methods=["GET", "POST"]),
    Route("/admin/users/{id}", user_detail),
    Route("/admin/users/{id}/profile", user_profile, methods=["POST"]),
    Route("/admin/users/{id}/active", user_active, methods=["POST"]),
    Route("/admin/users/{id}/password", user_password, methods=["POST"]),
    Route("/admin/users/{id}/access", user_access, methods=["POST"]),
    Route("/admin/teams", team_list),
    Route("/admin/teams/new", team_new, methods=["GET", "POST"]),
    Route("/admin/teams/{id}", team_detail),
    Route("/admin/teams/{id}/edit", team_edit, methods=["POST"]),
    Route("/admin/teams/{id}/members", team_members, methods=["POST"]),
    Route("/admin/teams/{id}/roles", team_roles, methods=["POST"]),
    Route("/admin/teams/{id}/delete", team_delete, methods=["POST"]),
    Route("/admin/roles", role_list),
    Route("/admin/roles/new", role_new, methods=["GET", "POST"]),
    Route("/admin/roles/{id}", role_detail),
    Route("/admin/roles/{id}/edit", role_edit, methods=["POST"]),
    Route("/admin/roles/{id}/matrix", role_matrix, methods=["POST"]),
    Route("/admin/roles/{id}/users", role_users, methods=["POST"]),
    Route("/admin/roles/{id}/teams", role_teams, methods=["POST"]),
    Route("/admin/roles/{id}/delete", role_delete, methods=["POST"]),
    Route("/admin/access", access_settings, methods=["GET", "POST"]),
    *admin_packs.routes,
    *admin_plugins.routes,
]
