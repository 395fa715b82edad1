"""Bearer tokens: POST with other credentials to get one, DELETE to revoke the one presented."""

from __future__ import annotations

import logging

from pyramid.security import NO_PERMISSION_REQUIRED
from sqlalchemy import update

from .. import links
from ..models import User
from ..models.collections import bump
from ..models.meta import utcnow
from ..resources import Service, respond
from ..resources.representation import no_content
from ..security import NO_STORE, unauthenticated

log = logging.getLogger(__name__)

tokens = Service(
    name="tokens",
    pyramid_route="tokens",
    description="Bearer tokens: POST with your credentials, DELETE to revoke.",
)


@tokens.post(permission=NO_PERMISSION_REQUIRED, content_type=None)
def issue(request):
    """A token for credentials of a login scheme (``hyperapi.auth.login_policies``)."""
    identity = request.identity
    login_schemes = request.registry.login_schemes
    if identity is None or identity.scheme not in login_schemes:
        raise unauthenticated(
            request,
            "A token is issued for the credentials of: " + ", ".join(sorted(login_schemes)) + ".",
            **NO_STORE,
        )
    session = request.dbsession
    table = User.__table__
    # last_seen changes here, not on every request: that would change the user's ETag on
    # every read.
    generation = session.execute(
        update(table)
        .where(table.c.id == identity.id)
        .values(last_seen=utcnow(), version=table.c.version + 1)
        .returning(table.c.token_generation)
    ).scalar_one()
    bump(session, "users")
    token = request.registry.tokens.issue(identity.id, generation)
    log.info("token issued: user=%s scheme=%s", identity.id, identity.scheme)
    body = {
        "token": token,
        "expires_in": request.registry.tokens.expires_in,
        # Where a client that knows only its credentials finds itself.
        "_links": {"user": links.link(request, "users.item", id=identity.id)},
    }
    return respond(request, body, headers=NO_STORE)


@tokens.delete(permission=NO_PERMISSION_REQUIRED)
def revoke(request):
    """Revoke the Bearer token this request is authenticated with (204)."""
    identity = request.identity
    if identity is None or identity.token_id is None:
        raise unauthenticated(
            request, "DELETE revokes the Bearer token it is sent with.", **NO_STORE
        )
    request.registry.revocations.revoke(request, identity.token_id, identity.token_accepted_until)
    log.info("token revoked: user=%s", identity.id)
    return no_content(request, headers=NO_STORE)


SERVICES = [tokens]
