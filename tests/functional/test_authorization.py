"""Who may do what (API.md, hyperapi.security.acl), as one matrix over every write.

Actors: the owner of the resource written to (alice), another user (bob), an admin, and
an anonymous client. A refused write is 401 (anonymous) or 403 (authenticated) and changes
nothing at all; 403 names neither the view nor the permission.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import snapshot

ACTORS = ("owner", "other", "admin", "anonymous")
FORBIDDEN = "You are not allowed to do this to this resource."


@dataclass
class World:
    ids: dict[str, int]
    auth: dict[str, dict[str, str]]


@pytest.fixture
def world(testapp, accounts) -> World:
    alice, bob = accounts.create("alice"), accounts.create("bob")
    root, carol = accounts.create("root", admin=True), accounts.create("carol")
    post = testapp.post_json("/api/v1/posts", {"body": "alice's"}, headers=alice["auth"])
    student = testapp.post_json("/api/v1/students", {"name": "Sam"}, headers=root["auth"])
    klass = testapp.post_json("/api/v1/classes", {"name": "Maths"}, headers=root["auth"])
    other_class = testapp.post_json("/api/v1/classes", {"name": "Art"}, headers=root["auth"])
    registration = testapp.post_json(
        "/api/v1/registrations",
        {"student": student.json["id"], "class": klass.json["id"]},
        headers=root["auth"],
    )
    testapp.put(f"/api/v1/users/{alice['id']}/followed/{bob['id']}", headers=alice["auth"])
    return World(
        ids={
            "alice": alice["id"],
            "bob": bob["id"],
            "carol": carol["id"],
            "post": post.json["id"],
            "student": student.json["id"],
            "class": klass.json["id"],
            "other_class": other_class.json["id"],
            "registration": registration.json["id"],
        },
        auth={
            "owner": alice["auth"],
            "other": bob["auth"],
            "admin": root["auth"],
            "anonymous": {},
        },
    )


@dataclass(frozen=True)
class Write:
    method: str
    path: str
    body: dict[str, Any] | None
    #: The expected status per actor, in the order of ACTORS.
    statuses: tuple[int, int, int, int]

    def request(self, testapp, world: World, actor: str, status: int):
        path = self.path.format(**world.ids)
        body = {
            k: v.format(**world.ids) if isinstance(v, str) else v
            for k, v in (self.body or {}).items()
        }
        headers = world.auth[actor]
        call = getattr(testapp, self.method.lower() + ("_json" if self.body is not None else ""))
        if self.body is not None:
            return call(path, body, headers=headers, status=status)
        return call(path, headers=headers, status=status)


OWNER_ONLY = (200, 403, 200, 401)
OWNER_ONLY_DELETE = (204, 403, 204, 401)
ANY_USER = (201, 201, 201, 401)
ADMIN_ONLY = (403, 403, 200, 401)
ADMIN_ONLY_CREATE = (403, 403, 201, 401)
ADMIN_ONLY_DELETE = (403, 403, 204, 401)

WRITES = {
    "register": Write(
        "POST",
        "/api/v1/users",
        {"username": "newbie", "email": "newbie@example.com", "password": "long enough"},
        (201, 201, 201, 201),
    ),
    "replace-user": Write(
        "PUT",
        "/api/v1/users/{alice}",
        {"username": "alice", "email": "a2@example.com"},
        OWNER_ONLY,
    ),
    "patch-user": Write("PATCH", "/api/v1/users/{alice}", {"about_me": "changed"}, OWNER_ONLY),
    "delete-user": Write("DELETE", "/api/v1/users/{alice}", None, OWNER_ONLY_DELETE),
    # Following is done only by the follower: not even an admin follows for someone.
    "follow": Write("PUT", "/api/v1/users/{alice}/followed/{carol}", None, (204, 403, 403, 401)),
    "unfollow": Write(
        "DELETE", "/api/v1/users/{alice}/followed/{bob}", None, (204, 403, 403, 401)
    ),
    "create-post": Write("POST", "/api/v1/posts", {"body": "hello"}, ANY_USER),
    "replace-post": Write("PUT", "/api/v1/posts/{post}", {"body": "replaced"}, OWNER_ONLY),
    "patch-post": Write("PATCH", "/api/v1/posts/{post}", {"body": "edited"}, OWNER_ONLY),
    "delete-post": Write("DELETE", "/api/v1/posts/{post}", None, OWNER_ONLY_DELETE),
    "create-student": Write("POST", "/api/v1/students", {"name": "Kim"}, ADMIN_ONLY_CREATE),
    "replace-student": Write("PUT", "/api/v1/students/{student}", {"name": "Kim"}, ADMIN_ONLY),
    "patch-student": Write("PATCH", "/api/v1/students/{student}", {"name": "Kim"}, ADMIN_ONLY),
    "delete-student": Write("DELETE", "/api/v1/students/{student}", None, ADMIN_ONLY_DELETE),
    "create-class": Write("POST", "/api/v1/classes", {"name": "Music"}, ADMIN_ONLY_CREATE),
    "replace-class": Write("PUT", "/api/v1/classes/{class}", {"name": "Music"}, ADMIN_ONLY),
    "patch-class": Write("PATCH", "/api/v1/classes/{class}", {"name": "Music"}, ADMIN_ONLY),
    "delete-class": Write("DELETE", "/api/v1/classes/{class}", None, ADMIN_ONLY_DELETE),
    "create-registration": Write(
        "POST",
        "/api/v1/registrations",
        {"student": "{student}", "class": "{other_class}"},
        ADMIN_ONLY_CREATE,
    ),
    "delete-registration": Write(
        "DELETE", "/api/v1/registrations/{registration}", None, ADMIN_ONLY_DELETE
    ),
}

MATRIX = [
    pytest.param(write, actor, write.statuses[i], id=f"{name}-{actor}")
    for name, write in WRITES.items()
    for i, actor in enumerate(ACTORS)
]


@pytest.mark.parametrize(("write", "actor", "status"), MATRIX)
def test_authorization_matrix(app, testapp, world, write, actor, status):
    before = snapshot(app)
    response = write.request(testapp, world, actor, status)
    if status == 401:
        assert response.json["type"] == "/api/v1/problems/unauthenticated"
        assert 'Basic realm="hyperapi"' in response.headers["WWW-Authenticate"]
    elif status == 403:
        assert response.json["type"] == "/api/v1/problems/forbidden"
        assert response.json["detail"] == FORBIDDEN
        assert "WWW-Authenticate" not in response.headers
        # Pyramid's own message would name the view and the permission it failed.
        assert "permission" not in response.text and "failed" not in response.text
    if status >= 400:
        assert snapshot(app) == before


READS = [
    "/api/v1/users",
    "/api/v1/users/{alice}",
    "/api/v1/users/{alice}/followers",
    "/api/v1/users/{alice}/followed",
    "/api/v1/users/{alice}/posts",
    "/api/v1/posts",
    "/api/v1/posts/{post}",
    "/api/v1/students",
    "/api/v1/students/{student}",
    "/api/v1/students/{student}/registrations",
    "/api/v1/classes",
    "/api/v1/classes/{class}",
    "/api/v1/classes/{class}/registrations",
    "/api/v1/registrations",
    "/api/v1/registrations/{registration}",
]


def test_reads_need_an_authenticated_user_and_any_will_do(testapp, world):
    # One world for every read: reads change nothing.
    for path in (template.format(**world.ids) for template in READS):
        response = testapp.get(path, status=401)
        assert response.json["type"] == "/api/v1/problems/unauthenticated", path
        assert testapp.get(path, headers=world.auth["other"]).status_int == 200, path


def test_the_entry_document_needs_no_credentials(testapp):
    assert testapp.get("/api/v1/").status_int == 200


def test_an_anonymous_write_is_401_before_its_body_is_looked_at(testapp, world):
    testapp.patch_json(f"/api/v1/users/{world.ids['alice']}", {"is_admin": "yes"}, status=401)


def test_a_forbidden_write_is_403_before_its_body_is_looked_at(testapp, world):
    testapp.patch_json(
        f"/api/v1/users/{world.ids['alice']}",
        {"is_admin": "yes"},
        headers=world.auth["other"],
        status=403,
    )


MASS_ASSIGNMENT = [
    ("PATCH", {"is_admin": True}),
    ("PATCH", {"id": 999}),
    ("PATCH", {"password_hash": "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA"}),
    ("PATCH", {"token_generation": 0}),
    ("PUT", {"username": "alice", "email": "alice@example.com", "is_admin": True}),
]


@pytest.mark.parametrize("actor", ["owner", "admin"])
@pytest.mark.parametrize(("method", "body"), MASS_ASSIGNMENT)
def test_privileged_fields_cannot_be_written(app, testapp, world, actor, method, body):
    before = snapshot(app)
    call = getattr(testapp, method.lower() + "_json")
    response = call(
        f"/api/v1/users/{world.ids['alice']}", body, headers=world.auth[actor], status=400
    )
    [field] = [name for name in body if name not in ("username", "email")]
    assert field in {error["name"] for error in response.json["errors"]}
    assert snapshot(app) == before


@pytest.mark.parametrize("field", ["is_admin", "id", "password_hash"])
def test_registration_cannot_set_privileged_fields(app, testapp, field):
    body = {"username": "mallory", "email": "m@example.com", "password": "long enough"}
    before = snapshot(app)
    response = testapp.post_json("/api/v1/users", {**body, field: 1}, status=400)
    assert field in {error["name"] for error in response.json["errors"]}
    assert snapshot(app) == before


def test_email_is_only_in_the_users_own_representation_and_the_admins(testapp, world):
    alice = f"/api/v1/users/{world.ids['alice']}"
    assert testapp.get(alice, headers=world.auth["owner"]).json["email"] == "alice@example.com"
    assert testapp.get(alice, headers=world.auth["admin"]).json["email"] == "alice@example.com"
    assert "email" not in testapp.get(alice, headers=world.auth["other"]).json
    listing = testapp.get("/api/v1/users", headers=world.auth["other"]).json["items"]
    emails = {item["username"]: item.get("email") for item in listing}
    assert emails == {"alice": None, "bob": "bob@example.com", "root": None, "carol": None}


def test_each_viewer_gets_its_own_etag_for_the_same_user(testapp, world):
    alice = f"/api/v1/users/{world.ids['alice']}"
    own = testapp.get(alice, headers=world.auth["owner"]).headers["ETag"]
    other = testapp.get(alice, headers=world.auth["other"]).headers["ETag"]
    assert own != other
