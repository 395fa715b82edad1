"""The entry document, from which a client reaches everything, and problem-type pages."""

from __future__ import annotations

from pyramid.security import NO_PERMISSION_REQUIRED

from .. import links
from ..errors import KINDS, Problem, problem_type
from ..resources import Service, respond

root = Service(name="api.root", pyramid_route="api.root", description="The entry document.")

COLLECTIONS = ("users", "posts", "students", "classes", "registrations")


@root.get(permission=NO_PERMISSION_REQUIRED)
def entry(request):
    nav = {"self": links.link(request, "api.root")}
    for name in COLLECTIONS:
        nav[name] = links.link(request, f"{name}.collection")
    nav["tokens"] = links.link(request, "tokens")
    nav["openapi"] = links.link(request, "api.openapi")
    nav["docs"] = links.link(request, "api.docs")
    return respond(request, {"name": "hyperapi", "version": "v1", "_links": nav})


problems = Service(
    name="api.problem",
    pyramid_route="api.problem",
    description="What one kind of problem (the `type` of an error response) means.",
)


@problems.get(permission=NO_PERMISSION_REQUIRED)
def problem_kind(request):
    kind = request.matchdict["kind"]
    if kind not in KINDS:
        raise Problem("not-found", "There is no such problem type.")
    status, title = KINDS[kind]
    return respond(
        request,
        {
            "type": problem_type(kind),
            "title": title,
            "status": status,
            "_links": {
                "self": links.link(request, "api.problem", kind=kind),
                "up": links.link(request, "api.root"),
            },
        },
    )


SERVICES = [root, problems]
