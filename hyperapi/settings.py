"""Settings: defaults, type coercion and ``HYPERAPI_*`` environment overrides.

Settings are parsed once, in :func:`includeme`, before anything else reads them. Every
setting can be overridden by an environment variable named after it: ``hyperapi.debug``
by ``HYPERAPI_DEBUG``, ``hyperapi.auth.token_secrets`` by ``HYPERAPI_AUTH_TOKEN_SECRETS``.
``sqlalchemy.url`` is read from ``HYPERAPI_DATABASE_URL`` so that no secret has to live in
an ini file. Bad values fail at start-up, never on the first request that needs them.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from typing import Any

from pyramid.settings import asbool, aslist

from .routes import OPERATIONS


class ConfigurationError(ValueError):
    """A setting is missing or unusable; the application refuses to start."""


def as_int(value: Any) -> int:
    return int(str(value).strip())


def as_list(value: Any) -> list[str]:
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return aslist(value or "")


def as_networks(value: Any) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    # Separated by whitespace or commas (HYPERAPI_TRUSTED_PROXIES=10.0.0.0/8,fd00::/8).
    parts = [part for item in as_list(value) for part in item.split(",") if part]
    return [ipaddress.ip_network(part, strict=False) for part in parts]


def as_optional(value: Any) -> str | None:
    value = (value or "").strip() if isinstance(value, str) else value
    return value or None


# name: (default, coercion). Only settings listed here are coerced; others pass through.
DEFAULTS: dict[str, tuple[Any, Callable[[Any], Any]]] = {
    # "development" or "production": production refuses weak or missing secrets.
    "hyperapi.environment": ("development", str),
    # Show exception details in 500 responses. Never in production.
    "hyperapi.debug": ("false", asbool),
    # Signs paging cursors; in production it must come from the environment.
    "hyperapi.secret": ("", str),
    "hyperapi.page_size": ("25", as_int),
    "hyperapi.max_page_size": ("100", as_int),
    # Request bodies larger than this many bytes get 413.
    "hyperapi.max_body_size": ("1048576", as_int),
    # Peers whose X-Forwarded-* headers are believed (CIDRs).
    "hyperapi.trusted_proxies": ("", as_networks),
    # Authentication: enabled schemes in order (names or dotted paths), token lifetime and
    # signing secrets (newest first), where revocations live, the WWW-Authenticate realm.
    "hyperapi.auth.policies": ("bearer basic", str),
    "hyperapi.auth.login_policies": ("", str),
    "hyperapi.auth.token_secrets": ("", as_list),
    "hyperapi.auth.token_expires": ("3600", as_int),
    "hyperapi.auth.revocations": ("database", str),
    # Redis revocations unreachable: accept bearer tokens unchecked (true) or answer 503.
    "hyperapi.auth.revocations_fail_open": ("false", asbool),
    # Prefix of the revoked tokens' keys in Redis, to share one Redis between deployments.
    "hyperapi.auth.revocations_key_prefix": ("hyperapi:revoked:", str),
    "hyperapi.auth.realm": ("hyperapi", str),
    "hyperapi.auth.verification_cache_ttl": ("60", as_int),
    # argon2id cost; lower only in tests.
    "hyperapi.argon2.time_cost": ("3", as_int),
    "hyperapi.argon2.memory_cost": ("65536", as_int),
    "hyperapi.argon2.parallelism": ("4", as_int),
    # Redis, for the stores that can use it (rate limits, revocations, response cache).
    "hyperapi.redis.url": ("", str),
    # Conditional requests: writes to an existing resource without If-Match get 428.
    "hyperapi.require_if_match": ("false", asbool),
    # Seconds that shared caches may keep the public documents (entry, problem types, OpenAPI).
    "hyperapi.http_cache.max_age": ("60", as_int),
    # Routes whose GET responses are the same for everyone: Cache-Control public, max-age.
    "hyperapi.http_cache.public_routes": ("api.root api.problem api.openapi api.docs", as_list),
    # Server-side response cache: route=seconds entries, where entries live, how many (memory).
    "hyperapi.response_cache.routes": ("", as_list),
    "hyperapi.response_cache.backend": ("memory", str),
    "hyperapi.response_cache.max_entries": ("10000", as_int),
    # Prefix of the response cache's keys in Redis, to share one Redis between deployments.
    "hyperapi.response_cache.key_prefix": ("hyperapi:response:", str),
    # PostgreSQL only: reads take rows from memory, kept in step by LISTEN/NOTIFY
    # (hyperapi.models.changes); a change is seen everywhere within max_staleness seconds.
    "hyperapi.row_cache.enabled": ("false", asbool),
    "hyperapi.row_cache.max_staleness": ("1", float),
    "hyperapi.row_cache.max_entries": ("10000", as_int),
    # Rate limits (see hyperapi.ratelimit): off only where something in front already limits.
    "hyperapi.ratelimit.enabled": ("true", asbool),
    # Requests per window, per user (authenticated) or per client address, `limits` notation.
    "hyperapi.ratelimit.default": ("300/minute", str),
    # Stricter limits by route and method, one per line: `POST tokens = 10/minute`.
    "hyperapi.ratelimit.routes": ("POST tokens = 10/minute\nPOST users.collection = 20/hour", str),
    # Failed password checks per client address, enforced before any password is hashed.
    "hyperapi.ratelimit.authentication_failures": ("10/minute", str),
    # Route names neither counted nor annotated with RateLimit fields: by default, the probes.
    "hyperapi.ratelimit.exempt_routes": (" ".join(OPERATIONS), as_list),
    # Where counters live: memory:// (this process only) or redis://host:6379/0 (shared).
    "hyperapi.ratelimit.storage_url": ("memory://", str),
    # fixed-window, sliding-window-counter or moving-window (see hyperapi.ratelimit.limiter).
    "hyperapi.ratelimit.strategy": ("fixed-window", str),
    # Prefix of the counters' keys in a shared storage, to share one Redis between apps.
    "hyperapi.ratelimit.key_prefix": ("hyperapi", str),
    # When the storage is unreachable: serve unlimited (true) or answer 503 (false).
    "hyperapi.ratelimit.fail_open": ("true", asbool),
    # Seconds to wait for the storage, and to leave it alone after it failed.
    "hyperapi.ratelimit.storage_timeout": ("0.25", float),
    "hyperapi.ratelimit.storage_retry": ("1", float),
    # Seconds /__heartbeat__ waits for the database and each Redis before calling it down.
    "hyperapi.heartbeat.timeout": ("2", float),
    "sqlalchemy.url": ("sqlite:///hyperapi.sqlite", str),
    "sqlalchemy.pool_size": ("5", as_int),
    "sqlalchemy.max_overflow": ("10", as_int),
    # A SELECT 1 per checkout; off: a dead pooled connection is replayed instead (models).
    "sqlalchemy.pool_pre_ping": ("false", asbool),
    # PostgreSQL: seconds to wait for a new connection before the request gets a 503.
    "sqlalchemy.connect_timeout": ("5", as_int),
    # Retry-After of the 503 answered while the database cannot be reached, in seconds.
    "hyperapi.database.retry_after": ("5", as_int),
    # SQLite only: how long a writer waits for the database lock, in milliseconds.
    "sqlalchemy.sqlite_busy_timeout": ("5000", as_int),
    "tm.commit_veto": ("pyramid_tm.default_commit_veto", str),
    "retry.attempts": ("3", as_int),
}

#: Settings whose environment variable does not follow the generic naming rule.
ENVIRONMENT_ALIASES = {"sqlalchemy.url": "HYPERAPI_DATABASE_URL"}

MIN_SECRET_LENGTH = 32


def environment_name(setting: str) -> str:
    if setting in ENVIRONMENT_ALIASES:
        return ENVIRONMENT_ALIASES[setting]
    stem = setting.removeprefix("hyperapi.")
    return "HYPERAPI_" + stem.replace(".", "_").upper()


def parse(raw: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Return a new settings dict: defaults, then ``raw``, then the environment, coerced."""
    environ = os.environ if environ is None else environ
    settings: dict[str, Any] = {name: default for name, (default, _) in DEFAULTS.items()}
    settings.update(raw)
    for name in list(settings):
        value = environ.get(environment_name(name))
        if value is not None:
            settings[name] = value
    for name, (_, coerce) in DEFAULTS.items():
        try:
            settings[name] = coerce(settings[name])
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"setting {name}={settings[name]!r}: {exc}") from exc
    check(settings)
    return settings


def check(settings: Mapping[str, Any]) -> None:
    """Fail fast on settings that cannot work."""
    if settings["hyperapi.environment"] not in ("development", "production"):
        raise ConfigurationError("hyperapi.environment must be development or production")
    if settings["hyperapi.page_size"] < 1 or settings["hyperapi.max_page_size"] < 1:
        raise ConfigurationError("page sizes must be positive")
    if settings["hyperapi.page_size"] > settings["hyperapi.max_page_size"]:
        raise ConfigurationError("hyperapi.page_size exceeds hyperapi.max_page_size")
    if not settings["sqlalchemy.url"]:
        raise ConfigurationError("no database: set HYPERAPI_DATABASE_URL (or sqlalchemy.url)")
    if settings["hyperapi.auth.token_expires"] < 1:
        raise ConfigurationError("hyperapi.auth.token_expires must be at least 1 second")
    if settings["hyperapi.ratelimit.enabled"] and not settings["hyperapi.ratelimit.storage_url"]:
        # An empty value in an ini file means an environment variable was forgotten: say so
        # rather than count in one process's memory while several serve.
        raise ConfigurationError(
            "hyperapi.ratelimit.storage_url is empty: set HYPERAPI_RATELIMIT_STORAGE_URL "
            "(redis://host:6379/0 to share counters, memory:// for one process)"
        )
    if not 0 < settings["hyperapi.row_cache.max_staleness"] <= 60:
        raise ConfigurationError("hyperapi.row_cache.max_staleness must be in (0, 60] seconds")
    if settings["hyperapi.row_cache.max_entries"] < 1:
        raise ConfigurationError("hyperapi.row_cache.max_entries must be at least 1")
    if settings["hyperapi.auth.verification_cache_ttl"] < 0:
        raise ConfigurationError("hyperapi.auth.verification_cache_ttl cannot be negative")
    if settings["hyperapi.environment"] == "production":
        if len(settings["hyperapi.secret"]) < MIN_SECRET_LENGTH:
            raise ConfigurationError(
                f"production needs HYPERAPI_SECRET of at least {MIN_SECRET_LENGTH} characters"
            )
        weak = [s for s in settings["hyperapi.auth.token_secrets"] if len(s) < MIN_SECRET_LENGTH]
        if not settings["hyperapi.auth.token_secrets"] or weak:
            raise ConfigurationError(
                "production needs HYPERAPI_AUTH_TOKEN_SECRETS: one or more secrets of at "
                f"least {MIN_SECRET_LENGTH} characters, newest first"
            )
        if settings["hyperapi.debug"]:
            raise ConfigurationError("hyperapi.debug must be off in production")


def includeme(config) -> None:
    config.registry.settings.update(parse(config.registry.settings))
    settings = config.registry.settings
    if not settings["hyperapi.secret"]:
        # Development without a configured secret: a fixed, public one is acceptable
        # there because nothing signed with it protects anything of value.
        settings["hyperapi.secret"] = "development-only-secret-not-for-production-use"
    if not settings["hyperapi.auth.token_secrets"]:
        settings["hyperapi.auth.token_secrets"] = [settings["hyperapi.secret"] + ":tokens"]
