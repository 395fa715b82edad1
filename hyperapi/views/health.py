"""Operations endpoints: liveness, readiness and version (Mozilla Dockerflow names)."""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version

from pyramid.security import NO_PERMISSION_REQUIRED
from sqlalchemy import text

from ..resources import Service, respond

log = logging.getLogger(__name__)

lbheartbeat = Service(
    name="health.lbheartbeat",
    pyramid_route="health.lbheartbeat",
    description="200 while the process serves requests; for load balancers.",
)
heartbeat = Service(
    name="health.heartbeat",
    pyramid_route="health.heartbeat",
    description="200 when every backend answers, 503 otherwise.",
)
version_service = Service(
    name="health.version", pyramid_route="health.version", description="What is running."
)


@lbheartbeat.get(permission=NO_PERMISSION_REQUIRED)
def lb(request):
    return respond(request, {})


def check_database(request) -> bool:
    try:
        with request.registry.database.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:  # any failure means "not ready"; the reason goes to the log
        log.warning("heartbeat: the database does not answer", exc_info=True)
        return False
    return True


@heartbeat.get(permission=NO_PERMISSION_REQUIRED)
def beat(request):
    checks = {"database": check_database(request)}
    for name, check in request.registry.heartbeats.items():
        checks[name] = check()
    ok = all(checks.values())
    return respond(request, checks, status=200 if ok else 503)


@version_service.get(permission=NO_PERMISSION_REQUIRED)
def show_version(request):
    try:
        current = version("hyperapi")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        current = "unknown"
    return respond(request, {"name": "hyperapi", "version": current})


SERVICES = [lbheartbeat, heartbeat, version_service]
