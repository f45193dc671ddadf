"""Activities and History panels (panels.py) as a built-in plugin: their routes (web.py) and
the ``activity_panels`` template global detail.html asks for the panels of a record."""
from __future__ import annotations

from core.kernel.hookspecs import hookimpl


@hookimpl(tryfirst=True)  # before the generic /m/{module}/{id}/... routes, like every app's
def crbm_web_routes(site):
    from core.apps.activities import web
    return web.routes


@hookimpl
def crbm_jinja_environment(site, env):
    from core.apps.activities import panels, web

    def activity_panels(module, record, title, user) -> list[dict]:
        """[] unless ``module`` opts in to activities; else the two panels, no rows (they
        come when a panel is opened) and no statement."""
        if not module.features.get("activities"):
            return []
        return [{"name": name, "title": web.TITLES[name],
                 "url": f"/m/{module.name}/{record['id']}/panel/{name}",
                 "creates": panels.create_links(site, module, record["id"], title, name, user)}
                for name in panels.PANELS]

    env.globals["activity_panels"] = activity_panels
