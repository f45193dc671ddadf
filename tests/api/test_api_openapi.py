"""The OpenAPI document (core/api/openapi.py): valid OpenAPI 3.1, in step with the Studio,
authenticated, per caller; and the human-readable docs page."""
from __future__ import annotations

import re

from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from core.apps.admin import access_admin as aa
from core.kernel.users import create_user
from tests.api_util import bearer, client
from tests.web.test_web_access import PASSWORD


def test_the_document_validates_follows_the_studio_and_the_caller(site, admin):
    auth = bearer(site, admin)
    with client(site) as api:
        assert api.get("/api/v1/openapi.json").status_code == 401
        first = api.get("/api/v1/openapi.json", headers=auth).json()
        validate(first, cls=OpenAPIV31SpecValidator)
        assert first["openapi"] == "3.1.0"
        accounts = first["components"]["schemas"]["accounts_create"]
        assert accounts["additionalProperties"] is False and "name" in accounts["required"]
        assert accounts["properties"]["name"]["maxLength"] == 150
        assert "customer" in accounts["properties"]["account_type"]["enum"]
        assert accounts["properties"]["annual_revenue"]["type"] == ["string", "number", "null"]
        assert "id" not in accounts["properties"]  # read-only: never in the input schemas
        paths = first["paths"]
        assert set(paths["/api/v1/accounts/{id}"]) >= {"get", "patch", "delete", "parameters"}
        assert "/api/v1/quotes/{id}/line_items" in paths
        convert = paths["/api/v1/quotes/{id}/actions/convert_to_sales_order"]["post"]
        assert convert["responses"]["200"]["content"]["application/json"]["schema"] == \
            {"$ref": "#/components/schemas/sales_orders"}
        assert paths["/api/v1/accounts"]["post"]["responses"]["422"]["content"] == \
            {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        flows = first["components"]["securitySchemes"]["oauth2"]["flows"]
        assert set(flows) == {"authorizationCode", "clientCredentials"}
        assert first["components"]["securitySchemes"]["bearer"]["bearerFormat"] == "JWT"
        assert api.get("/api/v1/openapi.json", headers=auth).json() == first  # cached
        # a Studio field and a Studio module appear at once
        site.studio.save_field(admin, "accounts", "loyalty_tier",
                               {"type": "dropdown", "options": "account_type_dom"}, new=True)
        site.studio.create_module(admin, "boats", "Boats", "Boat", "Fleet")
        second = api.get("/api/v1/openapi.json", headers=auth).json()
        validate(second, cls=OpenAPIV31SpecValidator)
        assert "loyalty_tier" in second["components"]["schemas"]["accounts"]["properties"]
        assert "loyalty_tier" not in first["components"]["schemas"]["accounts"]["properties"]
        assert "/api/v1/boats/{id}" in second["paths"] and "boats_create" in \
            second["components"]["schemas"]
        # a user whose roles disable a module does not see it described
        owen = create_user(site, "owen", PASSWORD)
        role = aa.create_role(site, "No contacts")
        aa.set_role_rules(site, role, {"contacts": ("disabled", {})})
        aa.set_role_users(site, role, add=[owen.id])
        theirs = api.get("/api/v1/openapi.json", headers=bearer(site, owen)).json()
        assert "/api/v1/contacts" not in theirs["paths"] and "/api/v1/accounts" in theirs["paths"]


def test_the_docs_page_lists_modules_operations_and_fields_for_signed_in_users(site, admin):
    site.studio.create_module(admin, "boats", "Boats", "Boat", "Fleet")
    site.studio.save_field(admin, "boats", "length_m", {"type": "decimal"}, new=True)
    with client(site) as web:
        assert web.get("/api/v1/docs", follow_redirects=False).headers["location"] \
            .startswith("/login")
        login = web.get("/login")
        token = re.search(r'name="_csrf" value="([^"]+)"', login.text).group(1)
        web.post("/login", data={"_csrf": token, "username": "admin",
                                 "password": "correct horse battery"})
        page = web.get("/api/v1/docs")
        assert page.status_code == 200
        assert "GET /api/v1/boats" in page.text and "length_m" in page.text
        assert "decimal string" in page.text and "/api/v1/quotes/{id}/actions/" in page.text
        assert "<script" not in page.text.split("</head>")[1]
