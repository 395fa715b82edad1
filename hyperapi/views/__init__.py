"""Thin Cornice services per resource: validate -> model -> represent."""

from __future__ import annotations

from . import classroom, entry, health, openapi, posts, tokens, users


def includeme(config) -> None:
    config.registry.heartbeats = getattr(config.registry, "heartbeats", {})
    for module in (entry, users, posts, classroom, tokens, health, openapi):
        for service in module.SERVICES:
            config.add_cornice_service(service)
    config.include(openapi)
