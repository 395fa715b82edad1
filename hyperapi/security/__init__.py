"""Authentication and authorization.

``hyperapi.auth.policies`` lists the enabled schemes in the order they are asked (built-in
names ``bearer`` and ``basic``, or the dotted path of a class providing
``hyperapi.interfaces.IAuthenticationScheme``). Missing or bad credentials get 401 with one
``WWW-Authenticate`` challenge per enabled scheme; an identified user lacking a permission
gets 403, which names neither the view nor the permission.

Credentials that were presented and did not verify get that 401 on every route, those that
need no credentials included, as Django REST framework and GitHub's API answer them: the
policy permits such a request nothing, and views that need no permission, which Pyramid
never asks the policy about, refuse it in :func:`refusing_failed_credentials`. The
operations endpoints answer whatever credentials come with a probe.
"""

from __future__ import annotations

from pyramid.httpexceptions import HTTPForbidden
from pyramid.interfaces import IDefaultPermission
from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.settings import aslist
from zope.interface.exceptions import Invalid
from zope.interface.verify import verifyObject

from ..errors import Problem
from ..interfaces import IAuthenticationScheme, IRevocations
from ..routes import OPERATIONS
from ..settings import ConfigurationError
from .acl import Root
from .basic import BasicScheme
from .bearer import BearerScheme
from .cache import MemoryCache
from .passwords import Passwords
from .policy import FAILURE, MultiSecurityPolicy
from .tokens import DatabaseRevocations, MemoryRevocations, RedisRevocations, TokenService

BUILTIN_SCHEMES = {"bearer": BearerScheme, "basic": BasicScheme}
BUILTIN_REVOCATIONS = {
    "database": DatabaseRevocations,
    "redis": RedisRevocations,
    "memory": MemoryRevocations,
}

#: Token responses, and the 401s of the token endpoint, are never stored (API.md).
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def unauthenticated(request, detail: str | None = None, **headers: str) -> Problem:
    """The 401 problem: why authentication failed, and a challenge per enabled scheme."""
    policy = request.registry.security_policy
    failure = request.environ.get(FAILURE)
    if failure:
        detail = f"Authentication failed: {failure[1]}."
    elif detail is None:
        detail = "This resource needs credentials (" + ", ".join(policy.names) + ")."
    return Problem(
        "unauthenticated",
        detail,
        headers={"WWW-Authenticate": ", ".join(policy.challenges(request)), **headers},
    )


def forbidden_view(exc, request) -> Problem:
    """401 for who could not be identified, 403 for who was but may not (RFC 9110 §15.5)."""
    if request.identity is None:
        return unauthenticated(request)
    # Pyramid's own message names the view and permission: it is not repeated here.
    return Problem("forbidden", "You are not allowed to do this to this resource.")


#: Routes whose views answer failed credentials their own way, recognised by route name as
#: each view is registered, so that nothing is matched per request: the operations endpoints
#: ignore credentials (a load balancer's probe is answered whatever headers it was configured
#: to send), and the token endpoint refuses them itself, with its never-stored 401.
OWN_ANSWER = frozenset((*OPERATIONS, "tokens"))


def refusing_failed_credentials(view, info):
    """A view deriver: a view that needs no permission refuses credentials that fail (401).

    Pyramid asks the security policy only about views that need a permission, and the policy
    permits nothing to a request whose credentials failed. Any other view (the entry
    document, the OpenAPI document and its page, problem types, static assets, Cornice's
    405/406/415) would answer that request as anonymous: it gets the 401 here, before
    anything else the view would say. Only a request that carries credentials, in a header
    some scheme reads, is authenticated for it; one that carries none is answered as before,
    with ``Vary`` naming those headers, since credentials that fail would change the answer.
    Views that need a permission, exception views and :data:`OWN_ANSWER` are left as they
    are: this costs them nothing.
    """
    if info.exception_only or info.options.get("route_name") in OWN_ANSWER:
        return view
    permission = info.options.get("permission") or info.registry.queryUtility(IDefaultPermission)
    if permission not in (None, NO_PERMISSION_REQUIRED):
        return view
    policy = info.registry.security_policy

    def refusing_failed_credentials_view(context, request):
        if not policy.carries_credentials(request):
            request.add_response_callback(policy.add_vary)
        elif request.identity is None and FAILURE in request.environ:
            raise unauthenticated(request)
        return view(context, request)

    return refusing_failed_credentials_view


def load(config, builtins: dict, name: str, setting: str):
    """A built-in by name, else the object at a dotted path; a clear error otherwise."""
    try:
        return config.maybe_dotted(builtins.get(name, name))
    except (ImportError, AttributeError, ValueError) as exc:
        known = ", ".join(builtins)
        raise ConfigurationError(
            f"{setting}: {name!r} is neither a built-in ({known}) nor an importable dotted "
            f"path ({exc})"
        ) from exc


def load_schemes(config) -> list:
    settings = config.get_settings()
    schemes = []
    for name in aslist(settings["hyperapi.auth.policies"]):
        scheme = load(config, BUILTIN_SCHEMES, name, "hyperapi.auth.policies")(config.registry)
        try:
            verifyObject(IAuthenticationScheme, scheme, tentative=True)
        except Invalid as exc:
            raise ConfigurationError(
                f"hyperapi.auth.policies: {name!r} is not an IAuthenticationScheme: {exc}"
            ) from exc
        schemes.append(scheme)
    if not schemes:
        raise ConfigurationError("hyperapi.auth.policies enables no scheme")
    names = [scheme.name for scheme in schemes]
    if len(set(names)) != len(names):
        raise ConfigurationError(f"hyperapi.auth.policies names a scheme twice: {names}")
    return schemes


def includeme(config) -> None:
    settings = config.get_settings()
    registry = config.registry
    passwords = Passwords.from_settings(settings)
    config.add_request_method(lambda request: passwords, "passwords", reify=True)

    registry.tokens = TokenService(
        settings["hyperapi.auth.token_secrets"], settings["hyperapi.auth.token_expires"]
    )
    name = settings["hyperapi.auth.revocations"]
    registry.revocations = load(config, BUILTIN_REVOCATIONS, name, "hyperapi.auth.revocations")(
        registry
    )
    if not IRevocations.providedBy(registry.revocations):
        raise ConfigurationError(f"hyperapi.auth.revocations: {name!r} is not an IRevocations")
    if hasattr(registry.revocations, "check"):
        # /__heartbeat__ reports a revocation store (Redis) that does not answer.
        registry.heartbeats = getattr(registry, "heartbeats", {})
        registry.heartbeats["revocations"] = registry.revocations.check
    registry.verification_cache = MemoryCache()

    schemes = load_schemes(config)
    names = [scheme.name for scheme in schemes]
    # POST /tokens takes credentials of these schemes: by default every enabled one but
    # bearer, so that a token cannot renew itself forever.
    login = aslist(settings["hyperapi.auth.login_policies"]) or [n for n in names if n != "bearer"]
    unknown = sorted(set(login) - set(names))
    if unknown:
        raise ConfigurationError(
            f"hyperapi.auth.login_policies names schemes that are not enabled: {unknown}"
        )
    registry.login_schemes = frozenset(login)
    policy = MultiSecurityPolicy(schemes)
    registry.security_policy = policy
    config.set_security_policy(policy)
    config.set_root_factory(Root)
    # Everything needs an authenticated user unless its view says otherwise.
    config.set_default_permission("view")
    config.add_exception_view(forbidden_view, context=HTTPForbidden)
    config.add_view_deriver(refusing_failed_credentials)
