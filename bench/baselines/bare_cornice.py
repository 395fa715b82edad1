"""Baseline: a bare Cornice service answering the item GET with fixed JSON.

The same path and about the same bytes as hyperapi's ``GET /api/v1/users/{id}``, but no
database, no authentication, no ETag and no tweens: what Pyramid + Cornice cost by
themselves, the floor under anything hyperapi does. Served like hyperapi, through
PasteDeploy (``use = call:bare_cornice:main``) under gunicorn.
"""

from __future__ import annotations

from cornice import Service
from pyramid.config import Configurator

HOST = "http://127.0.0.1"

user = Service(name="user", path="/api/v1/users/{id}", description="A fixed user.")


@user.get()
def get_user(request):
    base = f"{HOST}/api/v1/users/{request.matchdict['id']}"
    return {
        "id": int(request.matchdict["id"]),
        "username": "user2",
        "about_me": "",
        "member_since": "2026-01-01T00:00:00.000000Z",
        "last_seen": None,
        "post_count": 6,
        "follower_count": 7,
        "followed_count": 5,
        "_links": {
            "self": {"href": base},
            "followers": {"href": f"{base}/followers"},
            "followed": {"href": f"{base}/followed"},
            "posts": {"href": f"{base}/posts"},
            "collection": {"href": f"{HOST}/api/v1/users"},
        },
    }


def main(global_config, **settings):
    with Configurator(settings=settings) as config:
        config.include("cornice")
        config.add_cornice_service(user)
    return config.make_wsgi_app()
