"""The OpenAPI document is generated from the services, valid, and complete."""

from __future__ import annotations

from openapi_spec_validator import validate

from hyperapi.routes import ROUTES


def test_the_document_is_valid_openapi_3_1(testapp):
    document = testapp.get("/api/v1/openapi.json").json
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_every_route_is_documented(testapp):
    paths = testapp.get("/api/v1/openapi.json").json["paths"]
    documented = {
        path.replace("{other_id}", "X").replace("{id}", "X").replace("{kind}", "X")
        for path in paths
    }
    for _name, pattern in ROUTES:
        simple = (
            pattern.replace("{id:\\d+}", "X")
            .replace("{other_id:\\d+}", "X")
            .replace("{kind}", "X")
        )
        assert simple in documented, pattern


def test_operations_document_validators_preconditions_and_limits(testapp):
    document = testapp.get("/api/v1/openapi.json").json
    item = document["paths"]["/api/v1/students/{id}"]
    assert {"get", "head", "put", "patch", "delete"} <= set(item)
    get = item["get"]
    assert {"ETag", "Last-Modified", "RateLimit", "RateLimit-Policy"} <= set(
        get["responses"]["200"]["headers"]
    )
    assert {"304", "401", "404", "429"} <= set(get["responses"])
    put = item["put"]
    assert {"412", "428", "409"} - set(put["responses"]) == {"409"}
    refs = {p.get("$ref", "") for p in put["parameters"]}
    assert "#/components/parameters/If-Match" in refs
    collection = document["paths"]["/api/v1/students"]["get"]
    assert "Link" in collection["responses"]["200"]["headers"]
    assert {p["name"] for p in collection["parameters"] if "name" in p} >= {
        "page",
        "per_page",
        "sort",
        "cursor",
        "name",
    }


def test_bodies_come_from_the_colander_schemas(testapp):
    document = testapp.get("/api/v1/openapi.json").json
    body = document["paths"]["/api/v1/users"]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"]
    assert body["additionalProperties"] is False
    assert set(body["required"]) == {"username", "email", "password"}
    assert body["properties"]["username"]["maxLength"] == 64
    represented = document["paths"]["/api/v1/users/{id}"]["get"]["responses"]["200"]["content"][
        "application/json"
    ]["schema"]["properties"]
    assert "password" not in represented


def test_public_and_protected_operations_say_so(testapp):
    paths = testapp.get("/api/v1/openapi.json").json["paths"]
    assert paths["/api/v1/"]["get"]["security"] == []
    assert paths["/api/v1/users"]["post"]["security"] == []
    assert {"bearer": []} in paths["/api/v1/users"]["get"]["security"]


def test_the_docs_page_uses_only_local_assets(testapp):
    page = testapp.get("/api/v1/docs", headers={"Accept": "text/html"})
    assert page.content_type == "text/html"
    sources = [part for part in page.text.split('"') if part.startswith("http")]
    assert sources and all(s.startswith("http://api.example.com/api/v1/") for s in sources)
    for source in sources:
        testapp.get(source.removeprefix("http://api.example.com"))
