"""Request ids: one per request, in the log records of its errors and in ``X-Request-ID``.

A reverse proxy often tags each request with an id of its own so that its logs and ours can
be joined; that id is believed only from a peer listed in ``hyperapi.trusted_proxies``, and
only if it looks like an id (anyone else could write anything into our logs). Otherwise the
id is a fresh UUID. The negotiation tween echoes it on every response.
"""

from __future__ import annotations

import os
import re

from .proxy import from_trusted_proxy

HEADER = "X-Request-ID"

#: What a proxy's id may look like: UUIDs, hex, base64 and dotted/colon forms, no spaces.
WELL_FORMED = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+=@-]{0,127}\Z")

#: Where the id is kept: the environ outlives the request objects of pyramid_retry's attempts,
#: so every attempt of one request logs the same id.
ENVIRON_KEY = "hyperapi.request_id"


def new_id() -> str:
    """A random (version 4) UUID in its usual text form, as ``str(uuid.uuid4())`` gives.

    Written from 16 random bytes directly: ``uuid.uuid4()`` goes through an integer and
    back, which cost every response about 2 us of the 2 that its id took.
    """
    h = os.urandom(16).hex()
    # RFC 9562 §5.4: the version nibble is 4, the variant's two top bits are 10.
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def request_id(request) -> str:
    """The id of this request: a trusted proxy's ``X-Request-ID``, else a new UUID."""
    environ = request.environ
    if ENVIRON_KEY not in environ:
        given = environ.get("HTTP_X_REQUEST_ID")
        if given and WELL_FORMED.match(given) and from_trusted_proxy(request):
            environ[ENVIRON_KEY] = given
        else:
            environ[ENVIRON_KEY] = new_id()
    return environ[ENVIRON_KEY]


def includeme(config) -> None:
    config.add_request_method(request_id, "request_id", reify=True)
