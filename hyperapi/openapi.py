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

from .errors import KINDS, PROBLEM_JSON
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
                {"type": "integer", "minimum": 1, "description": "its id"},
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


def problem_response(description: str, *headers: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {
            PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}},
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
        elif status in (429, 503):
            extra = ("Retry-After",)
        problems[kind] = problem_response(title, *extra)
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


class _Anywhere:
    """A context with the base ACL: what may anyone do where no owner is involved?"""

    __acl__ = BASE_ACL


def is_public(permission) -> bool:
    if permission == NO_PERMISSION_REQUIRED:
        return True
    return bool(ACLHelper().permits(_Anywhere(), [Everyone], permission or "view"))


def _ref(kind: str) -> dict[str, str]:
    return {"$ref": f"#/components/responses/{kind}"}


def operation(service, method: str, args: dict, path_params: list[str]) -> dict[str, Any]:
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
                    "schema": node_schema(child),
                }
            )
    rate = {
        "RateLimit": {"$ref": "#/components/headers/RateLimit"},
        "RateLimit-Policy": {"$ref": "#/components/headers/RateLimit-Policy"},
    }
    validators = {
        "ETag": {"$ref": "#/components/headers/ETag"},
        "Last-Modified": {"$ref": "#/components/headers/Last-Modified"},
    }
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
    if method in ("GET", "HEAD"):
        headers = {**validators, **rate}
        if is_collection:
            headers["Link"] = {"$ref": "#/components/headers/Link"}
        responses["200"] = {"description": "The representation.", "headers": headers}
        if method == "GET":
            responses["200"]["content"] = content
        if resource_body is not None or is_collection:
            responses["304"] = {
                "description": "Not modified: the cached representation is "
                "current (If-None-Match / If-Modified-Since).",
                "headers": validators,
            }
            op["parameters"] += [
                {"$ref": "#/components/parameters/If-None-Match"},
                {"$ref": "#/components/parameters/If-Modified-Since"},
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
            responses["204"] = {"description": "Done.", "headers": rate}
    elif method == "DELETE":
        responses["204"] = {"description": "Deleted.", "headers": rate}
    if method in ("PUT", "PATCH", "DELETE") and (resource_body is not None):
        op["parameters"] += [
            {"$ref": "#/components/parameters/If-Match"},
            {"$ref": "#/components/parameters/If-Unmodified-Since"},
        ]
        responses["412"] = _ref("precondition-failed")
        responses["428"] = _ref("precondition-required")
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
    responses["405"] = _ref("method-not-allowed")
    responses["406"] = _ref("not-acceptable")
    responses["429"] = _ref("quota-exceeded")
    responses["500"] = _ref("internal")
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
            item[method.lower()] = operation(service, method, args, path_params)
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
