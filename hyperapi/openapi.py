"""The OpenAPI 3.1 document, generated from the Cornice services and their colander schemas.

Nothing here describes an endpoint by hand: paths come from the routes, operations from the
services' definitions (method, permission, schema), parameters and request bodies from the
colander request schemas, representations from the body schemas plus what every
representation carries (``id``, ``_links``). What is written here is what every operation
shares: the HTTP machinery (validators, preconditions, paging links, rate-limit fields) and
the problem-details responses.
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import colander
from pyramid.authorization import ACLHelper, Everyone
from pyramid.interfaces import IRoutesMapper
from pyramid.security import NO_PERMISSION_REQUIRED

from .errors import KINDS, OUTCOMES, PROBLEM_JSON
from .resources.views import MAX_ID
from .routes import OPERATIONS
from .schemas import types
from .security.acl import BASE_ACL

JSON = "application/json"
ID_PATTERN = re.compile(r"\{(\w+)(?::[^}]*)?\}")

HEADERS = {
    "ETag": {
        "description": "Strong validator of the representation (RFC 9110 §8.8.3).",
        "schema": {"type": "string"},
    },
    "Last-Modified": {
        "description": "When the representation last changed (RFC 9110 §8.8.2).",
        "schema": {"type": "string"},
    },
    "Link": {
        "description": "Paging links, RFC 8288 (first, prev, next, last, self).",
        "schema": {"type": "string"},
    },
    "Location": {"description": "URL of the created resource.", "schema": {"type": "string"}},
    "RateLimit": {
        "description": "Remaining quota (draft-ietf-httpapi-ratelimit-headers).",
        "schema": {"type": "string"},
    },
    "RateLimit-Policy": {
        "description": "The quota policy that applies.",
        "schema": {"type": "string"},
    },
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer"},
    },
    "WWW-Authenticate": {
        "description": "One challenge per enabled scheme.",
        "schema": {"type": "string"},
    },
    "Allow": {"description": "The methods the resource supports.", "schema": {"type": "string"}},
}

#: Routes that never touch the database (nor can its outage give them a 503): the probes,
#: which answer whatever the request carries. Every other operation may get the database's
#: 503, the public documents included: credentials sent to them are checked, in the
#: database, so that bad ones get 401 (hyperapi.security). The heartbeat declares its own.
WITHOUT_DATABASE = frozenset(OPERATIONS)

PRECONDITION_HEADERS = {
    "If-Match": "Only if the current ETag matches one of these (strong comparison); `*` for "
    "any. A write with a stale ETag gets 412.",
    "If-None-Match": "Only if no current ETag matches (weak comparison); a GET/HEAD whose "
    "ETag matches gets 304.",
    "If-Modified-Since": "GET/HEAD: 304 unless changed since this HTTP date.",
    "If-Unmodified-Since": "Only if not changed since this HTTP date (412 otherwise).",
}


def node_schema(node: colander.SchemaNode) -> dict[str, Any]:
    """JSON Schema (2020-12, as OpenAPI 3.1 uses) of one colander node of our strict types."""
    typ = node.typ
    schema: dict[str, Any]
    if isinstance(typ, colander.Mapping):
        properties = {child.name: node_schema(child) for child in node.children}
        schema = {
            "type": "object",
            "properties": properties,
            "additionalProperties": False,
        }
        required = [c.name for c in node.children if c.required]
        if required:
            schema["required"] = required
        return schema
    if isinstance(typ, types.DateTime):
        schema = {"type": "string", "format": "date-time"}
    elif isinstance(typ, types.Reference):
        schema = {
            "oneOf": [
                {
                    "type": "string",
                    "format": "uri-reference",
                    "description": f"URL of one of the {typ.collection}",
                },
                {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": types.MAX_ID,
                    "description": "its id",
                },
            ]
        }
    elif isinstance(typ, types.QueryInteger):
        schema = {"type": "integer", "minimum": 0}
    elif isinstance(typ, types.Integer):
        schema = {"type": "integer"}
    elif isinstance(typ, types.Boolean):
        schema = {"type": "boolean"}
    elif isinstance(typ, colander.String):
        schema = {"type": "string"}
    else:  # pragma: no cover - every type we use is listed above
        schema = {}
    for validator in _validators(node.validator):
        if isinstance(validator, colander.Length):
            if validator.min is not None:
                schema["minLength"] = validator.min
            if validator.max is not None:
                schema["maxLength"] = validator.max
        elif isinstance(validator, colander.Regex):
            schema["pattern"] = validator.match_object.pattern
    if node.description:
        schema["description"] = node.description
    if node.missing is not colander.required and node.missing is not colander.drop:
        schema["default"] = node.missing
    return schema


def _validators(validator) -> list:
    if validator is None:
        return []
    if isinstance(validator, colander.All):
        return [v for inner in validator.validators for v in _validators(inner)]
    return [validator]


def representation_schema(body: colander.SchemaNode | None) -> dict[str, Any]:
    """What a representation carries: its readable body fields, ``id`` and ``_links``."""
    properties: dict[str, Any] = {"id": {"type": "integer"}}
    if body is not None:
        for child in body.children:
            if getattr(child, "write_only", False):
                continue
            schema = node_schema(child)
            schema.pop("default", None)
            if isinstance(child.typ, types.Reference):
                schema = {"type": "string", "format": "uri"}
            properties[child.name] = schema
    properties["_links"] = {"$ref": "#/components/schemas/Links"}
    return {
        "type": "object",
        "properties": properties,
        "required": ["_links"],
        "additionalProperties": True,
    }


def problem_response(description: str, *headers: str, schema: str = "Problem") -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {
            PROBLEM_JSON: {"schema": {"$ref": f"#/components/schemas/{schema}"}},
            "text/html": {"schema": {"type": "string"}},
        },
    }
    if headers:
        response["headers"] = {name: {"$ref": f"#/components/headers/{name}"} for name in headers}
    return response


def components() -> dict[str, Any]:
    problems = {}
    for kind, (status, title) in KINDS.items():
        extra = ()
        if status == 401:
            extra = ("WWW-Authenticate",)
        elif status == 405:
            extra = ("Allow",)
        elif status == 412:
            # The current version, so that the client can decide without another GET.
            extra = ("ETag", "Last-Modified")
        elif status in (429, 503):
            extra = ("Retry-After",)
        # The database's 503 says what became of a write (``outcome``).
        schema = "ServiceUnavailable" if kind == "service-unavailable" else "Problem"
        # Errors too carry the rate-limit fields of the policy that counted the request.
        problems[kind] = problem_response(
            title, *extra, "RateLimit", "RateLimit-Policy", schema=schema
        )
    return {
        "schemas": {
            "Problem": {
                "type": "object",
                "description": "RFC 9457 problem details.",
                "properties": {
                    "type": {"type": "string", "format": "uri-reference"},
                    "title": {"type": "string"},
                    "status": {"type": "integer"},
                    "detail": {"type": "string"},
                    "instance": {"type": "string"},
                    "errors": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "location": {
                                    "type": "string",
                                    "enum": ["body", "querystring", "path", "header"],
                                },
                                "name": {"type": "string"},
                                "description": {"type": "string"},
                            },
                            "required": ["location", "name", "description"],
                        },
                    },
                },
                "required": ["type", "title", "status"],
            },
            "ServiceUnavailable": {
                "description": "A backend cannot serve just now: retry after Retry-After.",
                "allOf": [{"$ref": "#/components/schemas/Problem"}],
                "properties": {"outcome": outcome_schema()},
            },
            "Links": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "properties": {"href": {"type": "string"}, "templated": {"type": "boolean"}},
                    "required": ["href"],
                },
            },
        },
        "responses": problems,
        "headers": HEADERS,
        "parameters": {
            name: {
                "name": name,
                "in": "header",
                "required": False,
                "description": description,
                "schema": {"type": "string"},
            }
            for name, description in PRECONDITION_HEADERS.items()
        },
        "securitySchemes": {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "A token from POST /api/v1/tokens.",
            },
            "basic": {"type": "http", "scheme": "basic"},
        },
    }


def outcome_schema() -> dict[str, Any]:
    """The 503's ``outcome`` member, from the values and meanings errors.py answers with."""
    meanings = "; ".join(f"`{value}`: {meaning}" for value, meaning in OUTCOMES.items())
    return {
        "type": "string",
        "enum": list(OUTCOMES),
        "description": "Present when the database failed during an unsafe request (POST, "
        f"PUT, PATCH, DELETE): what became of its change. {meanings}. A safe request (GET, "
        "HEAD) changed nothing, has no outcome, and is safe to retry after Retry-After.",
    }


class _Anywhere:
    """A context with the base ACL: what may anyone do where no owner is involved?"""

    __acl__ = BASE_ACL


def is_public(permission) -> bool:
    if permission == NO_PERMISSION_REQUIRED:
        return True
    return bool(ACLHelper().permits(_Anywhere(), [Everyone], permission or "view"))


def _ref(kind: str) -> dict[str, str]:
    return {"$ref": f"#/components/responses/{kind}"}


def paging_bounds(name: str, settings) -> dict[str, Any]:
    """What the collection views accept of ``page`` and ``per_page`` (resources.views)."""
    if name == "page":
        return {"minimum": 1, "maximum": MAX_ID}
    if name == "per_page":
        return {
            "minimum": 1,
            "maximum": settings["hyperapi.max_page_size"],
            "default": settings["hyperapi.page_size"],
        }
    return {}


def is_collection_post(service, resource_body) -> bool:
    """A POST that adds to a collection (its preconditions compare the collection's ETag)."""
    return resource_body is not None and service.name.endswith(".collection")


def operation(
    service, method: str, args: dict, path_params: list[str], settings
) -> dict[str, Any]:
    schema = args.get("schema")
    parts = {child.name: child for child in schema.children} if schema is not None else {}
    public = is_public(args.get("permission"))
    is_collection = "querystring" in parts
    resource_body = getattr(service, "hyperapi_body", None)
    op: dict[str, Any] = {
        "operationId": f"{service.name}.{method.lower()}",
        "summary": (service.description or "").strip(),
        "tags": [service.name.split(".")[0]],
        "parameters": [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "string" if name == "kind" else "integer"},
            }
            for name in path_params
        ],
    }
    if "querystring" in parts:
        for child in parts["querystring"].children:
            op["parameters"].append(
                {
                    "name": child.name,
                    "in": "query",
                    "required": False,
                    "schema": {**node_schema(child), **paging_bounds(child.name, settings)},
                }
            )
    route = service.pyramid_route or service.name
    limited = settings["hyperapi.ratelimit.enabled"] and (
        route not in settings["hyperapi.ratelimit.exempt_routes"]
    )
    rate = (
        {
            "RateLimit": {"$ref": "#/components/headers/RateLimit"},
            "RateLimit-Policy": {"$ref": "#/components/headers/RateLimit-Policy"},
        }
        if limited
        else {}
    )
    # Items and collections have versions (ETag and Last-Modified); the public documents a
    # digest of their bytes (ETag only, hyperapi.tweens.conditional); the rest neither.
    versioned = resource_body is not None or is_collection
    validators = {"ETag": {"$ref": "#/components/headers/ETag"}}
    if versioned:
        validators["Last-Modified"] = {"$ref": "#/components/headers/Last-Modified"}
    elif route not in settings["hyperapi.http_cache.public_routes"]:
        validators = {}
    responses: dict[str, Any] = {}
    representation = (
        {
            "type": "object",
            "properties": {
                "items": {"type": "array", "items": representation_schema(resource_body)},
                "_meta": {"type": "object"},
                "_links": {"$ref": "#/components/schemas/Links"},
            },
            "required": ["items", "_meta", "_links"],
        }
        if is_collection
        else representation_schema(resource_body)
        if resource_body is not None
        else {"type": "object"}
    )
    content = {media: {"schema": representation} for media in (JSON, "application/hal+json")}
    if "text/html" in (args.get("accept") or ()):
        content = {"text/html": {"schema": {"type": "string"}}}
    if method in ("GET", "HEAD"):
        headers = {**validators, **rate}
        if is_collection:
            headers["Link"] = {"$ref": "#/components/headers/Link"}
        responses["200"] = {"description": "The representation.", "headers": headers}
        if method == "GET":
            responses["200"]["content"] = content
        if validators:
            # RFC 9110 §13.2.2: every precondition applies to a read with validators.
            responses["304"] = {
                "description": "Not modified: the cached representation is "
                "current (If-None-Match / If-Modified-Since).",
                "headers": {**validators, **rate},
            }
            responses["412"] = _ref("precondition-failed")
            op["parameters"] += [
                {"$ref": f"#/components/parameters/{name}"}
                for name in PRECONDITION_HEADERS
                if versioned or not name.endswith("-Since")
            ]
    elif method == "POST":
        if service.name == "tokens":
            responses["200"] = {
                "description": "A token.",
                "content": {
                    JSON: {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "token": {"type": "string"},
                                "expires_in": {"type": "integer"},
                            },
                            "required": ["token", "expires_in"],
                        }
                    }
                },
                "headers": rate,
            }
        else:
            responses["201"] = {
                "description": "Created.",
                "content": content,
                "headers": {
                    **validators,
                    **rate,
                    "Location": {"$ref": "#/components/headers/Location"},
                },
            }
            responses["409"] = _ref("conflict")
    elif method in ("PUT", "PATCH"):
        if resource_body is not None:
            responses["200"] = {
                "description": "The new representation.",
                "content": content,
                "headers": {**validators, **rate},
            }
        else:
            # Following: the follow's own validators, for a later conditional unfollow.
            validators = {
                "ETag": {"$ref": "#/components/headers/ETag"},
                "Last-Modified": {"$ref": "#/components/headers/Last-Modified"},
            }
            responses["204"] = {"description": "Done.", "headers": {**validators, **rate}}
    elif method == "DELETE":
        responses["204"] = {"description": "Deleted.", "headers": rate}
    writes_item = method in ("PUT", "PATCH", "DELETE") and bool(path_params)
    if writes_item or (method == "POST" and is_collection_post(service, resource_body)):
        # Item writes (and follow/unfollow) compare the item's ETag, a POST the collection's
        # (hyperapi.resources.views.check_write); If-None-Match: * on a PUT means "only if
        # it does not exist", which never holds for an item PUT cannot create.
        op["parameters"] += [
            {"$ref": f"#/components/parameters/{name}"}
            for name in ("If-Match", "If-None-Match", "If-Unmodified-Since")
        ]
        responses["412"] = _ref("precondition-failed")
    if writes_item:
        # With hyperapi.require_if_match, a write to an existing item without If-Match.
        responses["428"] = _ref("precondition-required")
        # A unique field taken by another row, or a concurrent writer that won the race.
        responses["409"] = _ref("conflict")
    if "body" in parts:
        media = [JSON] + (["application/merge-patch+json"] if method == "PATCH" else [])
        op["requestBody"] = {
            "required": True,
            "content": {m: {"schema": node_schema(parts["body"])} for m in media},
        }
        responses["413"] = _ref("payload-too-large")
        responses["415"] = _ref("unsupported-media-type")
    if parts or path_params:
        responses["400"] = _ref("validation")
    if path_params:
        responses["404"] = _ref("not-found")
    if not public:
        responses["401"] = _ref("unauthenticated")
        responses["403"] = _ref("forbidden")
        op["security"] = [{"bearer": []}, {"basic": []}]
    elif service.name == "tokens":
        responses["401"] = _ref("unauthenticated")
        op["security"] = [{"basic": []}] if method == "POST" else [{"bearer": []}]
    else:
        op["security"] = []
        if route not in OPERATIONS:
            # Credentials that are presented and fail get 401 here too (hyperapi.security);
            # the operations endpoints answer whatever a probe sends.
            responses["401"] = _ref("unauthenticated")
    responses["405"] = _ref("method-not-allowed")
    responses["406"] = _ref("not-acceptable")
    if limited:
        responses["429"] = _ref("quota-exceeded")
    responses["500"] = _ref("internal")
    # The database unreachable (or a rate limiter failing closed) is a 503, never a 500.
    fails_closed = limited and not settings["hyperapi.ratelimit.fail_open"]
    if route not in WITHOUT_DATABASE or fails_closed:
        responses["503"] = _ref("service-unavailable")
    if service.name == "health.heartbeat":
        responses["503"] = {
            "description": "A backend does not answer.",
            "content": {JSON: {"schema": {"type": "object"}}},
        }
    op["responses"] = dict(sorted(responses.items()))
    return op


def document(request) -> dict[str, Any]:
    """The OpenAPI document of the application serving ``request``."""
    mapper = request.registry.getUtility(IRoutesMapper)
    paths: dict[str, Any] = {}
    for service in request.registry.cornice_services.values():
        route = mapper.get_route(service.pyramid_route or service.name)
        if route is None:  # pragma: no cover - every service has a route
            continue
        path = ID_PATTERN.sub(lambda m: "{" + m.group(1) + "}", route.pattern)
        path_params = ID_PATTERN.findall(route.pattern)
        item = paths.setdefault(path, {})
        for method, _view, args in service.definitions:
            if method == "OPTIONS":
                continue
            item[method.lower()] = operation(
                service, method, args, path_params, request.registry.settings
            )
    try:
        current = version("hyperapi")
    except PackageNotFoundError:  # pragma: no cover
        current = "0"
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "hyperapi",
            "version": current,
            "description": "A hypermedia REST API. Start at /api/v1/ and follow `_links`.",
        },
        "servers": [{"url": request.application_url}],
        "paths": dict(sorted(paths.items())),
        "components": components(),
    }
