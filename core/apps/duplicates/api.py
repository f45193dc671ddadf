"""The REST side: ``POST /api/v1/<module>/<survivor id>/actions/merge`` for every module
that flags a field ``merge_duplicates`` (docs/api.md, "Duplicates"), and the candidates a
create answers with (``check_create``, called by core/api/resources.py)."""
from __future__ import annotations

from functools import partial

from core.api.actions import ApiAction
from core.api.problems import ApiProblem
from core.apps.duplicates import keys
from core.apps.duplicates.find import find_duplicates
from core.apps.duplicates.merge import MAX_RECORDS, MergeRefused, merge

MERGE_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["losers"],
    "properties": {
        "losers": {"type": "array", "minItems": 1, "maxItems": MAX_RECORDS - 1,
                   "items": {"type": "string", "maxLength": 36}},
        # field (or composite group) -> the id of the merged record whose value is kept
        "values": {"type": "object", "additionalProperties": {"type": "string",
                                                             "maxLength": 36}},
    },
}


def actions(site) -> list[ApiAction]:
    return [ApiAction(module.name, "merge",
                      f"Merge up to {MAX_RECORDS - 1} duplicates ({module.label}) into this "
                      "record: their related records and links move here, they are deleted",
                      partial(_merge_handler, module=module.name), MERGE_SCHEMA,
                      result_module=module.name)
            for module in site.registry.modules.values() if keys.plan_of(module) is not None]


def _merge_handler(site, user, record_id, body, *, module: str):
    try:
        return merge(site, module, [record_id, *body["losers"]], user, survivor=record_id,
                     choices=body.get("values") or {}).survivor
    except MergeRefused as exc:
        raise ApiProblem(403, str(exc)) from None


def check_create(site, module, values, user, params) -> None:
    """A create's duplicate check: 409 with the candidates unless ``?duplicates=ignore``."""
    if params.get("duplicates", "check") not in ("check", "ignore"):
        raise ApiProblem(400, "Unknown value of duplicates.",
                         errors={"duplicates": "is check (the default) or ignore"})
    if params.get("duplicates") == "ignore" or keys.plan_of(module) is None:
        return
    found = find_duplicates(site, module, values, user)
    if found:
        raise ApiProblem(
            409, f"This {module.label_singular} looks like {len(found)} existing record(s); "
            "send the request again with ?duplicates=ignore to create it anyway.",
            title="Likely duplicate", extensions={"duplicates": [
                {**d.as_json(), "url": f"/api/v1/{module.name}/{d.id}"} for d in found]})
