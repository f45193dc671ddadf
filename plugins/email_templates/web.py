""""Preview against a record": a template rendered for a chosen record, in a chosen
language, on a page of its own (a GET form: previewing changes nothing).

The record is read with the viewer's rights; what cannot be rendered (a record that does
not exist, a variable the record cannot fill, a field removed since) is shown as the
error ``render`` gives, in a box at the top, with the form kept for another try.
"""
from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from core.kernel.errors import N_, Message
from core.web.pages import page

from . import render

UUID_LENGTH = 36


@page()
def preview_view(request: Request, form):
    site, user = request.app.state.site, request.state.user
    template = site.records.get(render.MODULE, request.path_params["record_id"], user)
    chosen_module = template.get("for_module")
    if template.get("variant_of_id"):
        chosen_module = render.pick(site, template, None)[1].get("for_module")
    params = request.query_params
    values = {"module": chosen_module or params.get("module", ""),
              "record_id": params.get("record_id", "").strip()[:UUID_LENGTH],
              "language": params.get("language", "") or template.get("language") or ""}
    rendered = error = None
    if values["record_id"] and values["module"]:
        try:
            rendered = render.render(site, template, values["module"], values["record_id"],
                                     user=user, language=values["language"] or None)
        except render.TemplateError as exc:
            error = exc.args[0]  # a Message: shown in the viewer's language
    elif "record_id" in params:
        error = Message(N_("Choose a record to preview the template with."))
    record_label = values["record_id"]
    if rendered is not None:  # the picker shows the record's name, not its id
        definition = site.registry.module(values["module"])
        record = site.records.get(definition.name, values["record_id"], user)
        record_label = record.get(definition.name_field or "id") or record_label
    module_field = site.registry.module(render.MODULE).fields["for_module"]
    languages = site.registry.choices(site.registry.module(render.MODULE).fields["language"])
    return request.app.state.templates.render(
        request, "email_template_preview.html", status=422 if error else 200,
        template=template, values=values, rendered=rendered, error=error,
        record_label=record_label,
        fixed_module=bool(chosen_module), modules=module_field.type.choices(),
        languages=languages)


routes = [Route("/email_templates/{record_id}/preview", preview_view)]
