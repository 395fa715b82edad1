"""Every route of the application, by name.

Resources are named ``<resource>.collection`` and ``<resource>.item``; sub-collections
``<resource>.<relation>``. Links are built from these names only (see ``hyperapi.links``).
"""

from __future__ import annotations

API = "/api/v1"
ID = r"{id:\d+}"

ROUTES = (
    ("api.root", f"{API}/"),
    ("api.problem", f"{API}/problems/{{kind}}"),
    ("api.openapi", f"{API}/openapi.json"),
    ("api.docs", f"{API}/docs"),
    ("users.collection", f"{API}/users"),
    ("users.item", f"{API}/users/{ID}"),
    ("users.followers", f"{API}/users/{ID}/followers"),
    ("users.followed", f"{API}/users/{ID}/followed"),
    ("users.follow", f"{API}/users/{ID}/followed/{{other_id:\\d+}}"),
    ("users.posts", f"{API}/users/{ID}/posts"),
    ("posts.collection", f"{API}/posts"),
    ("posts.item", f"{API}/posts/{ID}"),
    ("students.collection", f"{API}/students"),
    ("students.item", f"{API}/students/{ID}"),
    ("students.registrations", f"{API}/students/{ID}/registrations"),
    ("classes.collection", f"{API}/classes"),
    ("classes.item", f"{API}/classes/{ID}"),
    ("classes.registrations", f"{API}/classes/{ID}/registrations"),
    ("registrations.collection", f"{API}/registrations"),
    ("registrations.item", f"{API}/registrations/{ID}"),
    ("tokens", f"{API}/tokens"),
    ("health.heartbeat", "/__heartbeat__"),
    ("health.lbheartbeat", "/__lbheartbeat__"),
    ("health.version", "/__version__"),
)

#: The operations endpoints (API.md, Operations), by route name. Load balancers and
#: orchestrators call them with whatever headers they were configured with, so they answer
#: regardless of credentials (hyperapi.security) and are, by default, not rate limited
#: (``hyperapi.ratelimit.exempt_routes``).
OPERATIONS = ("health.heartbeat", "health.lbheartbeat", "health.version")


def includeme(config) -> None:
    # Routes whose resource has an owner get a context that knows it (security.acl).
    from .security.acl import FACTORIES

    for name, pattern in ROUTES:
        config.add_route(name, pattern, factory=FACTORIES.get(name))
