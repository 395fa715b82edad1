"""Rate limits: policies from the ini file, counters in memory or Redis, a login guard.

``includeme`` builds the limiter once and keeps it on the registry with the parsed policies
(the tween ``hyperapi.tweens.ratelimit`` counts requests with them) and sets the
failed-authentication guard that HTTP Basic consults before hashing a password. With
``hyperapi.ratelimit.enabled = false`` none of this exists and nothing is limited.
"""

from __future__ import annotations

from ..settings import ConfigurationError
from .guard import FailedAuthenticationGuard
from .limiter import Limiter, Outcome, quota_exceeded
from .policies import Policies, Policy

__all__ = [
    "FailedAuthenticationGuard",
    "Limiter",
    "Outcome",
    "Policies",
    "Policy",
    "quota_exceeded",
]


def includeme(config) -> None:
    settings = config.get_settings()
    if not settings["hyperapi.ratelimit.enabled"]:
        return
    registry = config.registry
    try:
        registry.ratelimit_policies = Policies.from_settings(settings)
        registry.ratelimiter = Limiter.from_settings(settings)
    except ValueError as exc:
        raise ConfigurationError(f"hyperapi.ratelimit: {exc}") from exc
    registry.authentication_guard = FailedAuthenticationGuard(
        registry.ratelimiter, registry.ratelimit_policies.failures
    )
    if registry.ratelimiter.shared:
        # /__heartbeat__ reports a shared counter store that does not answer.
        registry.heartbeats = getattr(registry, "heartbeats", {})
        registry.heartbeats["ratelimit"] = registry.ratelimiter.check
