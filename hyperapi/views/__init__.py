"""Thin Cornice services per resource: validate -> model -> represent."""

from __future__ import annotations

from ..resources.prefetch import ItemPrefetch
from . import classroom, entry, health, openapi, posts, tokens, users


def includeme(config) -> None:
    config.registry.heartbeats = getattr(config.registry, "heartbeats", {})
    items = {}
    for module in (entry, users, posts, classroom, tokens, health, openapi):
        for service in module.SERVICES:
            config.add_cornice_service(service)
            if hasattr(service, "hyperapi_resource"):
                items[service.name] = service.hyperapi_resource
    # An item GET's row is read in the statement that authenticates its Bearer token.
    config.registry.item_prefetch = ItemPrefetch(items)
    config.include(openapi)
