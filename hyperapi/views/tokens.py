"""Bearer tokens: POST with other credentials to get one, DELETE to revoke the one presented."""

from __future__ import annotations

from pyramid.security import NO_PERMISSION_REQUIRED
from sqlalchemy import update

from .. import links
from ..errors import Problem
from ..models import User
from ..models.collections import bump
from ..models.meta import utcnow
from ..resources import Service, respond
from ..resources.representation import no_content

tokens = Service(
    name="tokens",
    pyramid_route="tokens",
    description="Bearer tokens: POST with your credentials, DELETE to revoke.",
)

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def unauthenticated(request, detail: str) -> Problem:
    policy = request.registry.security_policy
    challenges = [
        challenge for scheme in policy.schemes if (challenge := scheme.challenge(request))
    ]
    return Problem(
        "unauthenticated",
        detail,
        headers={"WWW-Authenticate": ", ".join(challenges), **NO_STORE},
    )


@tokens.post(permission=NO_PERMISSION_REQUIRED, content_type=None)
def issue(request):
    identity = request.identity
    if identity is None or identity.scheme not in request.registry.login_schemes:
        failure = request.environ.get("hyperapi.auth.failure")
        raise unauthenticated(
            request,
            f"Authentication failed: {failure[1]}."
            if failure
            else "A token is issued for a username and password (HTTP Basic).",
        )
    session = request.dbsession
    generation = session.execute(
        update(User.__table__)
        .where(User.id == identity.id)
        .values(last_seen=utcnow(), version=User.__table__.c.version + 1)
        .returning(User.__table__.c.token_generation)
    ).scalar_one()
    bump(session, "users")
    token = request.registry.tokens.issue(identity.id, generation)
    body = {
        "token": token,
        "expires_in": request.registry.tokens.expires_in,
        # Where a client that knows only its credentials finds itself.
        "_links": {"user": links.link(request, "users.item", id=identity.id)},
    }
    return respond(request, body, headers=NO_STORE)


@tokens.delete(permission=NO_PERMISSION_REQUIRED)
def revoke(request):
    identity = request.identity
    if identity is None or identity.token_id is None:
        raise unauthenticated(request, "DELETE revokes the Bearer token it is sent with.")
    request.registry.revocations.revoke(request, identity.token_id, identity.token_expires)
    return no_content(request, headers=NO_STORE)


SERVICES = [tokens]
