"""The request class: Pyramid's, with every request method of the application built in.

``config.add_request_method`` (used by hyperapi.models, .proxy, .request_id, .security,
Cornice and pyramid_tm) stores its properties as "request extensions", and Pyramid's router
applies them to each new request by creating a new subclass of the request class per
request (``InstancePropertyHelper.apply_properties``). That costs about 20 microseconds a
request (bench/hotpath.py; a 304 costs a few hundred), for the same class every time.

Once every extension is known, :func:`includeme`'s action builds that subclass once,
installs it as the request factory, and removes the extensions so that the router no longer
applies them per request. The properties are the very descriptors Pyramid would have set
(reified ones keep their value in the instance), so every ``request.<name>`` behaves as
before. Request *methods* (non-property extensions) must be bound per instance; should an
extension add one, the action leaves everything as Pyramid does it.

The class also remembers parsed ``Accept`` headers. WebOb parses the header again on every
``request.accept``, and Pyramid asks it twice per request (to order the views of a route by
media type, then in each view's accept predicate), each time normalising the same offers:
about a twentieth of an item GET. Clients send few distinct ``Accept`` values, so the
parsed header and its answers for each list of offers are kept, boundedly, and shared.
"""

from __future__ import annotations

import functools

from pyramid.interfaces import IRequestExtensions, IRequestFactory
from pyramid.request import Request
from webob.acceptparse import create_accept_header

#: How many answers one parsed Accept header keeps (one per distinct list of offers).
OFFER_LISTS = 32


@functools.lru_cache(maxsize=256)
def parsed_accept(header_value: str | None):
    """WebOb's object for this ``Accept`` value, remembering its ``acceptable_offers``."""
    accept = create_accept_header(header_value)
    compute = accept.acceptable_offers
    answers: dict[tuple[str, ...], tuple] = {}

    def acceptable_offers(offers):
        key = tuple(offers)
        answer = answers.get(key)
        if answer is None:
            answer = tuple(compute(key))
            if len(answers) < OFFER_LISTS:
                answers[key] = answer
        return list(answer)  # a list of its own, as WebOb returns

    accept.acceptable_offers = acceptable_offers
    return accept


def _accept(request):
    return parsed_accept(request.environ.get("HTTP_ACCEPT"))


#: ``request.accept``, read through the cache; setting and deleting are WebOb's own.
ACCEPT = property(_accept, Request.accept.fset, Request.accept.fdel, Request.accept.__doc__)


def build_request_class(config) -> None:
    registry = config.registry
    extensions = registry.queryUtility(IRequestExtensions)
    if extensions is None or extensions.methods:
        return
    base = registry.queryUtility(IRequestFactory, default=Request)
    request_class = type("HyperapiRequest", (base,), {**extensions.descriptors, "accept": ACCEPT})
    registry.registerUtility(request_class, IRequestFactory)
    registry.unregisterUtility(extensions, IRequestExtensions)


def includeme(config) -> None:
    # After every other action (add_request_method's run at the default order, 0), so that
    # the class has every extension whichever include added it.
    config.action(None, lambda: build_request_class(config), order=1)
