"""hyperapi: a hypermedia REST API on Pyramid and Cornice."""

from __future__ import annotations

from pyramid.config import Configurator


def main(global_config, **settings):
    """The WSGI application: each include below wires one feature, in dependency order."""
    with Configurator(settings=settings) as config:
        # Cornice first, committed, so that our exception views below replace its own.
        config.include("cornice")
        config.commit()
        # Defaults, coercion and HYPERAPI_* environment overrides, checked before anything runs.
        config.include(".settings")
        # request.client_address and the public URL, believing only trusted proxies.
        config.include(".proxy")
        # Engines, request.dbsession, pyramid_tm and pyramid_retry.
        config.include(".models")
        # The body size limit, held before pyramid_retry copies a request's body.
        config.include(".body_limit")
        # request.request_id: a trusted proxy's X-Request-ID or a new one, for logs and replies.
        config.include(".request_id")
        # Problem-details responses for every error, from any layer.
        config.include(".errors")
        # Authentication schemes, permissions, and the 401/403 responses.
        config.include(".security")
        # Rate-limit policies and counters, and the failed-login guard HTTP Basic consults.
        config.include(".ratelimit")
        # Cornice, and the one Service subclass every resource is declared with.
        config.include(".resources")
        # Every route, by name, under /api/v1.
        config.include(".routes")
        # The resources' views.
        config.include(".views")
        # Tweens, in the order written down in hyperapi.tweens.
        config.include(".tweens")
        # One request class with every request method above built in, not one per request.
        config.include(".request")
    return config.make_wsgi_app()
