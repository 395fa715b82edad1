"""The collection/item machinery every resource shares (see declaration.py and views.py)."""

from __future__ import annotations

from pyramid_retry import mark_error_retryable
from sqlalchemy.orm.exc import StaleDataError

from .declaration import Relation, Resource, request_schema
from .paging import CursorCodec
from .representation import respond
from .service import Service
from .views import lost_write_race, relation_service, services

__all__ = [
    "Relation",
    "Resource",
    "Service",
    "relation_service",
    "request_schema",
    "respond",
    "services",
]


def includeme(config) -> None:
    config.registry.cursor_codec = CursorCodec(config.get_settings()["hyperapi.secret"])
    # A versioned UPDATE/DELETE that matched no row lost a race with another writer: replay
    # the request, which then sees the new version (and, with If-Match, answers 412).
    mark_error_retryable(StaleDataError)
    # Should every replay lose the race too, the client is told to retry, not that we failed.
    config.add_exception_view(lost_write_race, context=StaleDataError)
    # The server-side response cache of the routes that enable it.
    config.include(".cache")
