"""Cornice behind one door: the Service every hyperapi endpoint is declared with.

Replacing Cornice later means replacing this module. It fixes what every service shares:
the JSON media types it speaks, the validator, and the error handler that turns Cornice's
collected errors (which Cornice *returns*, not raises) into problem details.
"""

from __future__ import annotations

import cornice

from ..errors import KIND_BY_STATUS, Problem, validation_problem
from . import validation

#: What every endpoint can produce; HAL when the client asks for it.
ACCEPT = ["application/json", "application/hal+json"]
#: What every endpoint that takes a body reads.
CONTENT_TYPES = ["application/json"]
PATCH_CONTENT_TYPES = ["application/json", validation.MERGE_PATCH]


def error_handler(request) -> Problem:
    errors = [
        {
            "location": error.get("location", ""),
            "name": error.get("name") or "",
            "description": _text(error.get("description", "")),
        }
        for error in request.errors
    ]
    status = request.errors.status
    if status == 400:
        return validation_problem(errors)
    kind = KIND_BY_STATUS.get(status, "validation")
    detail = "; ".join(e["description"] for e in errors) or "The request cannot be served."
    return Problem(kind, detail, status=status)


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class Service(cornice.Service):
    """A Cornice service with hyperapi's defaults."""

    default_validators = [validation.validate]
    default_filters: list = []

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("error_handler", error_handler)
        kwargs.setdefault("accept", ACCEPT)
        super().__init__(*args, **kwargs)

    def add_view(self, method, view, **kwargs):
        method = method.upper()
        if method in ("POST", "PUT"):
            kwargs.setdefault("content_type", CONTENT_TYPES)
        elif method == "PATCH":
            kwargs.setdefault("content_type", PATCH_CONTENT_TYPES)
        super().add_view(method, view, **kwargs)
