"""Authentication and authorization.

``hyperapi.auth.policies`` lists the enabled schemes in the order they are asked (built-in
names ``bearer`` and ``basic``, or the dotted path of a class providing
``hyperapi.interfaces.IAuthenticationScheme``). Missing or bad credentials get 401 with one
``WWW-Authenticate`` challenge per enabled scheme; an identified user lacking a permission
gets 403.
"""

from __future__ import annotations

from pyramid.httpexceptions import HTTPForbidden
from pyramid.settings import aslist

from ..errors import Problem
from ..settings import ConfigurationError
from .acl import Root
from .basic import BasicScheme
from .bearer import BearerScheme
from .cache import MemoryCache
from .passwords import Passwords
from .policy import MultiSecurityPolicy
from .tokens import DatabaseRevocations, RedisRevocations, TokenService

BUILTIN_SCHEMES = {"bearer": BearerScheme, "basic": BasicScheme}
BUILTIN_REVOCATIONS = {"database": DatabaseRevocations, "redis": RedisRevocations}


def forbidden_view(exc, request) -> Problem:
    """401 for who could not be identified, 403 for who was but may not (RFC 9110 §15.5)."""
    if request.identity is None:
        policy = request.registry.security_policy
        failure = request.environ.get("hyperapi.auth.failure")
        detail = (
            f"Authentication failed: {failure[1]}."
            if failure
            else "This resource needs credentials: a Bearer token or HTTP Basic."
        )
        return Problem(
            "unauthenticated",
            detail,
            headers={"WWW-Authenticate": ", ".join(policy.challenges(request))},
        )
    return Problem("forbidden", "You are not allowed to do this to this resource.")


def includeme(config) -> None:
    settings = config.get_settings()
    registry = config.registry
    passwords = Passwords.from_settings(settings)
    config.add_request_method(lambda request: passwords, "passwords", reify=True)

    secrets = settings["hyperapi.auth.token_secrets"]
    registry.tokens = TokenService(secrets, settings["hyperapi.auth.token_expires"])
    revocations = settings["hyperapi.auth.revocations"]
    registry.revocations = config.maybe_dotted(BUILTIN_REVOCATIONS.get(revocations, revocations))(
        registry
    )
    registry.verification_cache = MemoryCache()

    schemes = []
    for name in aslist(settings["hyperapi.auth.policies"]):
        factory = config.maybe_dotted(BUILTIN_SCHEMES.get(name, name))
        schemes.append(factory(registry))
    if not schemes:
        raise ConfigurationError("hyperapi.auth.policies enables no scheme")
    login = aslist(settings["hyperapi.auth.login_policies"] or "") or [
        s.name for s in schemes if s.name != "bearer"
    ]
    registry.login_schemes = frozenset(login)
    policy = MultiSecurityPolicy(schemes)
    registry.security_policy = policy
    config.set_security_policy(policy)
    config.set_root_factory(Root)
    # Everything needs an authenticated user unless its view says otherwise.
    config.set_default_permission("view")
    config.add_exception_view(forbidden_view, context=HTTPForbidden)
