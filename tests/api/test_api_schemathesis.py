"""schemathesis against the live OpenAPI document: generated requests (valid and not) for
a Studio-made module, accounts, quotes and webhook subscriptions must never get a 5xx, and every answer must
match the document (status codes, content types, schemas).

Bounded (few examples per operation) to stay within about a minute; SQLite only, since
it exercises the API layer, which is the same on every database (the record service's
database behaviour has its own tests on all three)."""
from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from core.kernel.users import create_user
from core.web.app import create_app
from tests.api_util import bearer

pytestmark = pytest.mark.skipif(os.environ.get("CRBM_TEST_DATABASE_URL") is not None,
                                reason="the API layer is the same on every database: "
                                       "schemathesis runs on SQLite only (time)")
MODULES = r"^/api/v1(/(boats|accounts|quotes|webhooks)(/|$)|$)"
EXAMPLES = 8
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, negative_data_rejection]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """One site for the whole run (hypothesis calls the test many times)."""
    from core.kernel.site import Site, create_site
    from tests.plugins.kitchen_sink import plugin as kitchen_sink
    folder = create_site(tmp_path_factory.mktemp("schemathesis") / "site")
    site = Site(folder, extra_plugins=[kitchen_sink])
    site.sync_schema()
    admin = create_user(site, "admin", "correct horse battery", is_admin=True)
    site.set_setting("api_rate_limit_user", 10_000_000)
    site.set_setting("api_rate_limit_client", 10_000_000)
    site.set_setting("api_allow_http", True)  # the ASGI test client speaks http://
    site.studio.create_module(admin, "boats", "Boats", "Boat", "Fleet",
                              features={"assignable": True})
    for name, spec in {"length_m": {"type": "decimal", "precision": 8, "scale": 2},
                       "built": {"type": "integer", "min": 1800, "max": 2100},
                       "launched_on": {"type": "date"}, "sail": {"type": "checkbox"},
                       "hull": {"type": "dropdown", "options": "account_type_dom"}}.items():
        site.studio.save_field(admin, "boats", name, spec, new=True)
    account = site.records.create("accounts", {"name": "Acme"}, admin)
    site.records.create("boats", {"name": "Dinghy", "built": 1990}, admin)
    site.records.create("quotes", {"name": "Q", "account_id": account["id"], "line_items": [
        {"lines": [{"name": "Thing", "quantity": 1, "unit_price": "10"}]}]}, admin)
    app = create_app(site)
    yield app, bearer(site, admin)
    site.close()


def test_no_server_error_and_every_answer_matches_the_document(live):
    """Each operation in turn, with hypothesis drawing its cases (valid and invalid)
    from schemathesis' strategy; failures are collected and reported together."""
    app, auth = live
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app, headers=auth) \
        .include(path_regex=MODULES)
    failures, operations, statuses = [], 0, {}
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                              operation.as_strategy(GenerationMode.NEGATIVE)))
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case):
            response = case.call_and_validate(headers=auth, checks=CHECKS)
            statuses[response.status_code // 100] = statuses.get(response.status_code // 100, 0) + 1

        try:
            run()
        except Exception as exc:  # noqa: BLE001 — keep going: report every operation
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    assert operations > 20 and statuses.get(2, 0) > 20 and statuses.get(4, 0) > 20, statuses
    assert not failures, "\n\n".join(failures)
