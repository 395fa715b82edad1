"""The OpenAPI document is generated from the services, valid, and complete."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from pyramid.interfaces import IRequestFactory
from pyramid.scripting import prepare
from sqlalchemy.exc import OperationalError
from webtest import TestApp

from hyperapi.errors import (
    OUTCOME_NOT_APPLIED,
    OUTCOME_UNKNOWN,
    OUTCOMES,
    PROBLEM_JSON,
    database_unavailable_view,
)
from hyperapi.openapi import WITHOUT_DATABASE
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
    assert {"ETag", "RateLimit"} <= set(get["responses"]["304"]["headers"])
    assert {"304", "401", "403", "404", "412", "429"} <= set(get["responses"])
    assert {"If-None-Match", "If-Modified-Since", "If-Match"} <= refs(get)
    for method in ("put", "patch", "delete"):
        assert {"401", "403", "404", "409", "412", "428", "429"} <= set(item[method]["responses"])
        assert {"If-Match", "If-None-Match", "If-Unmodified-Since"} <= refs(item[method])
    collection = document["paths"]["/api/v1/students"]
    assert "Link" in collection["get"]["responses"]["200"]["headers"]
    assert {p["name"] for p in collection["get"]["parameters"] if "name" in p} >= {
        "page",
        "per_page",
        "sort",
        "cursor",
        "name",
    }
    # A POST compares the collection's ETag (create only if unchanged), never needs it.
    assert {"409", "412"} <= set(collection["post"]["responses"])
    assert "428" not in collection["post"]["responses"]
    assert "If-Match" in refs(collection["post"])
    follow = document["paths"]["/api/v1/users/{id}/followed/{other_id}"]["put"]
    assert {"412", "428"} <= set(follow["responses"]) and "If-None-Match" in refs(follow)
    components = document["components"]["responses"]
    assert {"ETag"} <= set(components["precondition-failed"]["headers"])
    assert {"Retry-After", "RateLimit", "RateLimit-Policy"} <= set(
        components["quota-exceeded"]["headers"]
    )


def test_probes_are_documented_as_exempt_from_rate_limits(testapp):
    beat = testapp.get("/api/v1/openapi.json").json["paths"]["/__heartbeat__"]["get"]
    assert "429" not in beat["responses"] and "RateLimit" not in beat["responses"]["200"].get(
        "headers", {}
    )
    assert "503" in beat["responses"]


def test_database_outages_are_documented_with_the_outcome_of_writes(testapp):
    document = testapp.get("/api/v1/openapi.json").json
    validate(document)
    # Every operation that touches the database may get its 503; the others never do.
    for path, item in document["paths"].items():
        for method, operation in item.items():
            touches = operation["operationId"].rsplit(".", 1)[0] not in WITHOUT_DATABASE
            if touches:
                assert operation["responses"]["503"] == {
                    "$ref": "#/components/responses/service-unavailable"
                }, (method, path)
            elif path != "/__heartbeat__":
                assert "503" not in operation["responses"], (method, path)
    unavailable = document["components"]["responses"]["service-unavailable"]
    assert "Retry-After" in unavailable["headers"]
    schema = unavailable["content"][PROBLEM_JSON]["schema"]["$ref"].rsplit("/", 1)[1]
    outcome = document["components"]["schemas"][schema]["properties"]["outcome"]
    # The very values errors.py answers with, each explained to the client.
    assert outcome["enum"] == list(OUTCOMES) == [OUTCOME_NOT_APPLIED, OUTCOME_UNKNOWN]
    assert all(f"`{value}`" in outcome["description"] for value in OUTCOMES)
    assert "GET" in outcome["description"]


def test_a_database_503_conforms_to_the_document(app, testapp, conformance):
    """The problems errors.py builds for an outage match what the document declares."""
    lost = OperationalError("COMMIT", {}, Exception("server closed the connection"))
    in_doubt = OperationalError("COMMIT", {}, Exception("server closed the connection"))
    in_doubt.hyperapi_commit_in_doubt = True  # as hyperapi.models marks a failed COMMIT
    cases = [
        ("GET", "/api/v1/posts/1", "/api/v1/posts/{id}", lost, None),
        ("POST", "/api/v1/posts", "/api/v1/posts", lost, OUTCOME_NOT_APPLIED),
        ("PATCH", "/api/v1/posts/1", "/api/v1/posts/{id}", in_doubt, OUTCOME_UNKNOWN),
    ]
    # The application's own request class: it carries request_id and the other extensions.
    factory = app.registry.getUtility(IRequestFactory)
    for method, path, template, exc, expected in cases:
        env = prepare(request=factory.blank(path, method=method), registry=app.registry)
        try:
            problem = database_unavailable_view(exc, env["request"])
        finally:
            env["closer"]()
        assert problem.problem.get("outcome") == expected
        conformance.check(method, template, problem, expect=503)


def refs(operation) -> set[str]:
    return {p["$ref"].rsplit("/", 1)[1] for p in operation["parameters"] if "$ref" in p}


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


# -- the document against the real responses ----------------------------------------------

#: Response headers the document describes; any of them a response carries must be declared.
DESCRIBED = ("ETag", "Last-Modified", "Link", "RateLimit", "RateLimit-Policy", "Retry-After")


class Conformance:
    """Checks real responses against the operation the document declares for them."""

    def __init__(self, document):
        self.document = document

    def declared(self, method: str, template: str, status: int) -> dict:
        responses = self.document["paths"][template][method.lower()]["responses"]
        assert str(status) in responses, f"{method} {template} answered an undocumented {status}"
        response = responses[str(status)]
        if "$ref" in response:
            response = self.document["components"]["responses"][response["$ref"].rsplit("/")[-1]]
        return response

    def check(self, method: str, template: str, response, *, expect: int) -> None:
        assert response.status_int == expect, response
        declared = self.declared(method, template, response.status_int)
        carried = {name for name in DESCRIBED if name in response.headers}
        assert carried <= set(declared.get("headers", {})), (method, template, expect, carried)
        if response.content_type == PROBLEM_JSON:
            # A problem's body too: its members are the ones its schema allows.
            schema = declared["content"][PROBLEM_JSON]["schema"]
            root = {**schema, "components": self.document["components"]}
            Draft202012Validator(root).validate(json.loads(response.body))


@pytest.fixture
def conformance(testapp) -> Conformance:
    return Conformance(testapp.get("/api/v1/openapi.json").json)


def test_conditional_reads_and_writes_answer_as_documented(testapp, alice, bob, conformance):
    check = conformance.check
    auth = alice["auth"]
    created = testapp.post_json("/api/v1/posts", {"body": "hello"}, headers=auth)
    check("POST", "/api/v1/posts", created, expect=201)
    path = created.headers["Location"].removeprefix("http://api.example.com")
    item = "/api/v1/posts/{id}"
    etag = created.headers["ETag"]

    got = testapp.get(path, headers=auth)
    check("GET", item, got, expect=200)
    assert {"ETag", "Last-Modified", "RateLimit", "RateLimit-Policy"} <= set(got.headers)
    not_modified = testapp.get(path, headers={**auth, "If-None-Match": etag}, status=304)
    check("GET", item, not_modified, expect=304)
    refused_read = testapp.get(path, headers={**auth, "If-Match": '"other"'}, status=412)
    check("GET", item, refused_read, expect=412)

    stale = testapp.put_json(
        path, {"body": "x"}, headers={**auth, "If-Match": '"stale"'}, status=412
    )
    check("PUT", item, stale, expect=412)
    assert stale.headers["ETag"] == etag
    check(
        "PATCH",
        item,
        testapp.patch_json(path, {"body": "y"}, headers=bob["auth"], status=403),
        expect=403,
    )
    check("DELETE", item, testapp.delete(path, status=401), expect=401)
    check("GET", item, testapp.get("/api/v1/posts/999999", headers=auth, status=404), expect=404)

    page = testapp.get("/api/v1/posts", headers=auth)
    check("GET", "/api/v1/posts", page, expect=200)
    assert "Link" in page.headers
    moved_on = testapp.post_json(
        "/api/v1/posts", {"body": "late"}, headers={**auth, "If-Match": '"c0"'}, status=412
    )
    check("POST", "/api/v1/posts", moved_on, expect=412)

    entry = testapp.get("/api/v1/")
    again = testapp.get("/api/v1/", headers={"If-None-Match": entry.headers["ETag"]}, status=304)
    check("GET", "/api/v1/", again, expect=304)

    follow = f"/api/v1/users/{alice['id']}/followed/{bob['id']}"
    template = "/api/v1/users/{id}/followed/{other_id}"
    check("PUT", template, testapp.put(follow, headers={**auth, "If-None-Match": "*"}), expect=204)
    twice = testapp.put(follow, headers={**auth, "If-None-Match": "*"}, status=412)
    check("PUT", template, twice, expect=412)


def test_conflicts_required_preconditions_and_quotas_answer_as_documented(
    app_factory, testapp, accounts, conformance
):
    alice = accounts.create("alice")
    taken = {"username": "alice", "email": "other@example.com", "password": "a long password"}
    check = conformance.check
    check(
        "POST", "/api/v1/users", testapp.post_json("/api/v1/users", taken, status=409), expect=409
    )

    strict = TestApp(
        app_factory(
            **{"hyperapi.require_if_match": "true", "hyperapi.ratelimit.default": "3/minute"}
        ),
        extra_environ={"HTTP_HOST": "api.example.com"},
    )
    path = f"/api/v1/users/{alice['id']}"
    unguarded = strict.patch_json(path, {"about_me": "hi"}, headers=alice["auth"], status=428)
    check("PATCH", "/api/v1/users/{id}", unguarded, expect=428)
    for _ in range(2):
        check("GET", "/api/v1/users/{id}", strict.get(path, headers=alice["auth"]), expect=200)
    over = strict.get(path, headers=alice["auth"], status=429)
    check("GET", "/api/v1/users/{id}", over, expect=429)
    assert {"Retry-After", "RateLimit", "RateLimit-Policy"} <= set(over.headers)
    beat = strict.get("/__heartbeat__")  # exempt: no quota, no RateLimit fields
    check("GET", "/__heartbeat__", beat, expect=200)
    assert "RateLimit" not in beat.headers


def test_a_public_document_sent_credentials_answers_the_database_s_503(
    app, testapp, alice, conformance, monkeypatch
):
    # Credentials sent to /api/v1/ are checked (bad ones get 401), so the database's outage
    # reaches it; without credentials it needs no database and still answers.
    token = testapp.post("/api/v1/tokens", headers=alice["auth"]).json["token"]

    def unreachable():
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    monkeypatch.setattr(app.registry.database.reads, "get", unreachable)
    for headers in ({"Authorization": "Bearer " + token}, alice["auth"]):
        refused = testapp.get("/api/v1/", headers=headers, status=503)
        assert refused.json["type"].endswith("/service-unavailable")
        conformance.check("GET", "/api/v1/", refused, expect=503)
    assert testapp.get("/api/v1/").status_int == 200
