"""Operations endpoints: liveness, readiness and version (Mozilla Dockerflow names).

``/__heartbeat__`` asks the database and every shared store that registered a check in
``registry.heartbeats`` (the rate limiter's storage, Redis revocations, a Redis response
cache), all at once, and waits at most ``hyperapi.heartbeat.timeout`` seconds for them: a
backend that hangs is reported down instead of hanging the load balancer's probe.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from importlib.metadata import PackageNotFoundError, version

from pyramid.security import NO_PERMISSION_REQUIRED
from sqlalchemy import text

from ..errors import describe
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
    description="200 when the database and every configured Redis answer, 503 otherwise.",
)
version_service = Service(
    name="health.version", pyramid_route="health.version", description="What is running."
)


@lbheartbeat.get(permission=NO_PERMISSION_REQUIRED)
def lb(request):
    return respond(request, {})


def database_check(registry) -> Callable[[], bool]:
    def check() -> bool:
        with registry.database.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True

    return check


def run_checks(checks: dict[str, Callable[[], bool]], timeout: float) -> dict[str, bool]:
    """Run every check concurrently; one that fails, raises or overruns ``timeout`` is False."""
    executor = ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="heartbeat")
    futures = {name: executor.submit(check) for name, check in checks.items()}
    done, _ = wait(futures.values(), timeout=timeout)
    # A check still running is abandoned (its own socket timeout ends it), not waited for.
    executor.shutdown(wait=False, cancel_futures=True)
    results = {}
    for name, future in futures.items():
        if future not in done:
            log.warning("heartbeat: %s did not answer within %s seconds", name, timeout)
            results[name] = False
        elif future.exception() is not None:
            # Any failure means "not ready"; the reason goes to the log in one line, with no
            # traceback: probes poll this every few seconds for as long as an outage lasts.
            log.warning("heartbeat: %s failed: %s", name, describe(future.exception()))
            results[name] = False
        else:
            results[name] = bool(future.result())
    return results


@heartbeat.get(permission=NO_PERMISSION_REQUIRED)
def beat(request):
    registry = request.registry
    checks = {"database": database_check(registry), **registry.heartbeats}
    results = run_checks(checks, registry.settings["hyperapi.heartbeat.timeout"])
    return respond(request, results, status=200 if all(results.values()) else 503)


@version_service.get(permission=NO_PERMISSION_REQUIRED)
def show_version(request):
    try:
        current = version("hyperapi")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        current = "unknown"
    return respond(request, {"name": "hyperapi", "version": current})


SERVICES = [lbheartbeat, heartbeat, version_service]
