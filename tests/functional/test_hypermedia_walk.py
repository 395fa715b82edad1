"""A client that knows only /api/v1/ reaches, creates, reads, changes and deletes everything."""

from __future__ import annotations

from urllib.parse import urlsplit

from tests.conftest import basic


def path(href: str) -> str:
    parts = urlsplit(href)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def expand(link: dict, **values) -> str:
    href = link["href"]
    assert link.get("templated") is True
    for name, value in values.items():
        href = href.replace("{" + name + "}", str(value))
    return href


def test_entry_document_needs_no_credentials_and_links_every_collection(testapp):
    links = testapp.get("/api/v1/").json["_links"]
    for name in ("self", "users", "posts", "students", "classes", "registrations", "tokens"):
        assert links[name]["href"].startswith("http://api.example.com/api/v1/")
    assert path(links["self"]["href"]) == "/api/v1/"


def test_every_link_of_every_representation_resolves(testapp, admin):
    """Walk the graph breadth-first from the entry document; every href answers 200."""
    auth = admin["auth"]
    entry = testapp.get("/api/v1/").json["_links"]
    student = testapp.post_json(path(entry["students"]["href"]), {"name": "Ann"}, headers=auth)
    klass = testapp.post_json(path(entry["classes"]["href"]), {"name": "Maths"}, headers=auth)
    testapp.post_json(
        path(entry["registrations"]["href"]),
        {
            "student": student.json["_links"]["self"]["href"],
            "class": klass.json["_links"]["self"]["href"],
        },
        headers=auth,
    )
    testapp.post_json(path(entry["posts"]["href"]), {"body": "hello"}, headers=auth)
    seen, queue = set(), [entry["self"]["href"]]
    while queue:
        href = queue.pop()
        if href in seen or "tokens" in href:
            continue
        seen.add(href)
        response = testapp.get(path(href), headers=auth)
        if response.content_type != "application/json":
            continue  # the documentation page
        body = response.json
        documents = [body, *body.get("items", [])]
        for document in documents:
            for link in document.get("_links", {}).values():
                if not link.get("templated"):
                    queue.append(link["href"])
    visited = {urlsplit(h).path for h in seen}
    for expected in (
        "/api/v1/users/1",
        "/api/v1/users/1/followers",
        "/api/v1/users/1/posts",
        "/api/v1/posts/1",
        "/api/v1/students/1/registrations",
        "/api/v1/classes/1/registrations",
        "/api/v1/registrations/1",
    ):
        assert expected in visited


def test_full_walk_from_the_entry_document(testapp, admin):
    entry = testapp.get("/api/v1/").json["_links"]

    # Register, then log in: the token response says who we are.
    created = testapp.post_json(
        path(entry["users"]["href"]),
        {"username": "susan", "email": "susan@example.com", "password": "s3cret-pass"},
    )
    assert created.status_int == 201
    assert created.headers["Location"] == created.json["_links"]["self"]["href"]
    login = testapp.post(path(entry["tokens"]["href"]), headers=basic("susan", "s3cret-pass"))
    auth = {"Authorization": "Bearer " + login.json["token"]}
    me_href = login.json["_links"]["user"]["href"]
    me = testapp.get(path(me_href), headers=auth).json
    assert me["email"] == "susan@example.com"

    # Users: PUT replaces, PATCH merges.
    replaced = testapp.put_json(
        path(me_href),
        {"username": "susan", "email": "susan@example.org", "about_me": "hi"},
        headers=auth,
    )
    assert replaced.json["about_me"] == "hi"
    patched = testapp.patch_json(path(me_href), {"about_me": "hello"}, headers=auth)
    assert patched.json["email"] == "susan@example.org"
    assert patched.json["about_me"] == "hello"

    # Posts: create through the collection link, edit, read through the user's posts link.
    post = testapp.post_json(path(entry["posts"]["href"]), {"body": "first"}, headers=auth)
    post_href = post.json["_links"]["self"]["href"]
    assert post.json["_links"]["author"]["href"] == me_href
    testapp.put_json(path(post_href), {"body": "first!"}, headers=auth)
    testapp.patch_json(path(post_href), {"body": "first!!"}, headers=auth)
    mine = testapp.get(path(me["_links"]["posts"]["href"]), headers=auth).json
    assert [p["body"] for p in mine["items"]] == ["first!!"]

    # Following: the admin is found through the users collection, followed by template.
    others = testapp.get(path(entry["users"]["href"]), headers=auth).json["items"]
    root = next(u for u in others if u["username"] == "root")
    follow = expand(me["_links"]["follow"], other_id=root["id"])
    assert testapp.put(path(follow), headers=auth).status_int == 204
    followers = testapp.get(path(root["_links"]["followers"]["href"]), headers=auth).json
    assert [u["username"] for u in followers["items"]] == ["susan"]
    assert testapp.delete(path(follow), headers=auth).status_int == 204

    # Classroom (admin's): student, class, registration, and back again.
    admin_auth = admin["auth"]
    student = testapp.post_json(
        path(entry["students"]["href"]), {"name": "Ann"}, headers=admin_auth
    ).json
    klass = testapp.post_json(
        path(entry["classes"]["href"]), {"name": "Maths"}, headers=admin_auth
    ).json
    testapp.put_json(path(student["_links"]["self"]["href"]), {"name": "Anne"}, headers=admin_auth)
    testapp.patch_json(
        path(klass["_links"]["self"]["href"]), {"name": "Algebra"}, headers=admin_auth
    )
    registration = testapp.post_json(
        path(entry["registrations"]["href"]),
        {"student": student["_links"]["self"]["href"], "class": klass["_links"]["self"]["href"]},
        headers=admin_auth,
    ).json
    listed = testapp.get(path(student["_links"]["registrations"]["href"]), headers=auth).json
    assert [r["id"] for r in listed["items"]] == [registration["id"]]
    assert listed["items"][0]["_links"]["class"]["href"] == klass["_links"]["self"]["href"]

    # Delete everything we made, through its self link.
    for href, who in (
        (registration["_links"]["self"]["href"], admin_auth),
        (klass["_links"]["self"]["href"], admin_auth),
        (student["_links"]["self"]["href"], admin_auth),
        (post_href, auth),
        (me_href, auth),
    ):
        assert testapp.delete(path(href), headers=who).status_int == 204
    for href in (post_href, student["_links"]["self"]["href"]):
        assert testapp.get(path(href), headers=admin_auth, status=404)
