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
"""

from __future__ import annotations

from pyramid.interfaces import IRequestExtensions, IRequestFactory
from pyramid.request import Request


def build_request_class(config) -> None:
    registry = config.registry
    extensions = registry.queryUtility(IRequestExtensions)
    if extensions is None or extensions.methods:
        return
    base = registry.queryUtility(IRequestFactory, default=Request)
    request_class = type("HyperapiRequest", (base,), dict(extensions.descriptors))
    registry.registerUtility(request_class, IRequestFactory)
    registry.unregisterUtility(extensions, IRequestExtensions)


def includeme(config) -> None:
    # After every other action (add_request_method's run at the default order, 0), so that
    # the class has every extension whichever include added it.
    config.action(None, lambda: build_request_class(config), order=1)
