"""The composed security policy: who a request is from, and what credentials that fail get."""

from __future__ import annotations

from pyramid.authorization import Allow, Everyone
from pyramid.request import Request

from hyperapi.security.identity import AuthenticationFailed, Identity
from hyperapi.security.policy import FAILURE, MultiSecurityPolicy


class KeyScheme:
    """Accepts ``X-Key: good``; refuses any other value of that header."""

    name = "key"
    vary = ("X-Key",)

    def identify(self, request):
        key = request.headers.get("X-Key")
        if key is None:
            return None
        if key != "good":
            raise AuthenticationFailed("the key is not valid")
        return Identity(id=1, username="alice", is_admin=False, scheme=self.name)

    def challenge(self, request):
        return "Key"


class Anywhere:
    __acl__ = [(Allow, Everyone, "register")]


def request_with(**headers: str) -> Request:
    return Request.blank("/", headers=headers)


def test_credentials_that_fail_are_permitted_not_even_what_anyone_may_do():
    policy = MultiSecurityPolicy([KeyScheme()])
    request = request_with(**{"X-Key": "guessed"})
    permitted = policy.permits(request, Anywhere(), "register")
    assert not permitted
    assert request.environ[FAILURE] == ("key", "the key is not valid")


def test_no_credentials_and_good_ones_are_permitted_what_anyone_may_do():
    policy = MultiSecurityPolicy([KeyScheme()])
    for request in (request_with(), request_with(**{"X-Key": "good"})):
        assert policy.permits(request, Anywhere(), "register")
        assert FAILURE not in request.environ


def test_credentials_are_carried_in_the_headers_the_schemes_read():
    policy = MultiSecurityPolicy([KeyScheme()])
    assert policy.carries_credentials(request_with(**{"X-Key": ""}))
    assert not policy.carries_credentials(request_with(Authorization="Bearer x"))
    assert not policy.carries_credentials(request_with())
