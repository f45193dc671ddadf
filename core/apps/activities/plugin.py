"""Activities and History panels (panels.py), the record's timeline (timeline.py) and the
panels' open/closed state per user (state.py) as a built-in plugin: their routes (web.py,
state.py), the state's table, and the ``activity_panels`` and ``record_timeline`` template
globals detail.html asks for a record's panels and timeline card."""
from __future__ import annotations

from core.kernel.hookspecs import hookimpl


@hookimpl(tryfirst=True)  # before the generic /m/{module}/{id}/... routes, like every app's
def crbm_web_routes(site):
    from core.apps.activities import state, web
    return [*web.routes, *state.routes]


@hookimpl
def crbm_tables(metadata):
    from core.apps.activities import state
    state.tables(metadata)


@hookimpl
def crbm_jinja_environment(site, env):
    from core.apps.activities import panels, timeline, web

    def activity_panels(module, record, title, user) -> list[dict]:
        """[] unless ``module`` opts in to activities; else the two panels, no rows (they
        come when a panel is opened) and no statement."""
        if not module.features.get("activities"):
            return []
        drop = env.globals.get("history_drop")  # a plugin's: files dropped become notes
        return [{"name": name, "title": web.TITLES[name],
                 "drop": drop(module, record, user) if drop and name == "history" else None,
                 "url": f"/m/{module.name}/{record['id']}/panel/{name}",
                 "creates": panels.create_links(site, module, record["id"], title, name, user)}
                for name in panels.PANELS]

    def record_timeline(module, record, user) -> dict | None:
        """The timeline card's URL and filter (no statement: its entries come when the card
        is shown), or None where the record has neither activities nor a change log."""
        choices = timeline.filters(site, module, user)
        if not choices:
            return None
        return {"url": f"/m/{module.name}/{record['id']}/timeline", "choices": choices}

    env.globals["activity_panels"] = activity_panels
    env.globals["record_timeline"] = record_timeline
