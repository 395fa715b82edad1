"""The OpenAPI document and a page that renders it, from assets installed with the package."""

from __future__ import annotations

from importlib.resources import files

from markupsafe import escape
from pyramid.response import Response
from pyramid.security import NO_PERMISSION_REQUIRED

from .. import openapi
from ..resources import Service, respond

document = Service(
    name="api.openapi", pyramid_route="api.openapi", description="The OpenAPI 3.1 document."
)
docs = Service(
    name="api.docs", pyramid_route="api.docs", description="The API documentation page."
)

#: Swagger UI, as shipped by the swagger-ui-py package: no CDN, works offline.
SWAGGER_UI = files("swagger_ui") / "static"

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>hyperapi API documentation</title>
<link rel="stylesheet" href="{css}">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{bundle}"></script>
<script src="{loader}" data-spec="{spec}" id="docs-loader"></script>
</body>
</html>
"""


@document.get(permission=NO_PERMISSION_REQUIRED)
def openapi_json(request):
    cache = request.registry.__dict__.setdefault("hyperapi_openapi", {})
    key = request.application_url
    if key not in cache:
        cache[key] = openapi.document(request)
    return respond(request, cache[key])


@docs.get(permission=NO_PERMISSION_REQUIRED, accept=["text/html"])
def docs_page(request):
    body = PAGE.format(
        css=escape(request.static_url(f"{SWAGGER_UI}/swagger-ui.css")),
        bundle=escape(request.static_url(f"{SWAGGER_UI}/swagger-ui-bundle.js")),
        loader=escape(request.static_url("hyperapi:static/docs.js")),
        spec=escape(request.route_url("api.openapi")),
    )
    return Response(body=body.encode(), content_type="text/html", charset="utf-8")


SERVICES = [document, docs]


def includeme(config) -> None:
    # The page's own script (a strict Content-Security-Policy forbids inline scripts).
    config.add_static_view("api/v1/docs/static", "hyperapi:static/", cache_max_age=3600)
    config.add_static_view(
        name="api/v1/docs/swagger-ui", path=str(SWAGGER_UI), cache_max_age=86400
    )
