"""The pure parts of error handling: negotiation, problem members, request ids, body caps."""

from __future__ import annotations

import io
import json
import logging

import pytest
from pyramid.httpexceptions import HTTPMethodNotAllowed, HTTPNotFound
from pyramid.registry import Registry
from pyramid.request import Request as PyramidRequest
from pyramid.response import Response
from pyramid_retry import mark_error_retryable
from webob import Request

from hyperapi.body_limit import TOO_LARGE, BodyLimitGuard, CappedInput
from hyperapi.errors import Problem, as_problem
from hyperapi.request_id import WELL_FORMED, request_id
from hyperapi.tweens.negotiation import negotiation_tween_factory, prefers_html

FIREFOX = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
CURL = "*/*"


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        pytest.param(None, False, id="no-accept"),
        pytest.param(CURL, False, id="anything"),
        pytest.param("application/json", False, id="json"),
        pytest.param("application/problem+json", False, id="problem-json"),
        pytest.param(FIREFOX, True, id="browser"),
        pytest.param("text/html", True, id="html-only"),
        pytest.param("application/json, text/html", False, id="tie-goes-to-json"),
        pytest.param("application/json;q=0.5, text/html", True, id="html-preferred"),
        pytest.param("image/png", False, id="neither"),
        pytest.param("text/html;q=0", False, id="html-refused"),
        pytest.param("not a media type", False, id="invalid-header"),
    ],
)
def test_html_is_chosen_only_when_the_client_prefers_it_to_json(accept, html):
    request = Request.blank("/", headers={} if accept is None else {"Accept": accept})
    assert prefers_html(request) is html


def test_a_problem_keeps_the_members_its_raiser_gave_it():
    problem = Problem("not-found", "Gone.", instance="/elsewhere")
    problem.add_members(instance="/here", request_id="r1")
    body = json.loads(problem.body)
    assert (body["instance"], body["request_id"]) == ("/elsewhere", "r1")


def test_a_returned_http_exception_becomes_a_problem_keeping_its_headers():
    returned = HTTPMethodNotAllowed(headers={"Allow": "GET", "Vary": "Origin"})
    problem = as_problem(returned)
    assert problem.status_int == 405
    assert json.loads(problem.body)["type"] == "/api/v1/problems/method-not-allowed"
    assert (problem.headers["Allow"], problem.headers["Vary"]) == ("GET", "Origin")
    assert problem.content_type == "application/problem+json"


def test_an_error_response_that_is_a_representation_is_left_alone():
    heartbeat = Response(json_body={"database": False}, status=503)
    assert as_problem(heartbeat) is None
    assert as_problem(Problem("not-found", "x")).kind == "not-found"
    assert as_problem(HTTPNotFound()).kind == "not-found"


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("0f8fad5b-d9cb-469f-a165-70867728950e", True),
        ("Root=1-67891233-abcdef012345678912345678", True),
        ("abc/def+ghi==", True),
        ("", False),
        ("-leading-dash", False),
        ("with space", False),
        ("new\nline", False),
        ("x" * 128, True),
        ("x" * 129, False),
    ],
)
def test_only_well_formed_request_ids_are_taken_from_a_proxy(value, ok):
    assert bool(WELL_FORMED.match(value)) is ok


def test_a_capped_input_reads_one_byte_past_the_limit_and_flags_it():
    environ: dict = {}
    capped = CappedInput(io.BytesIO(b"x" * 100), 10, environ)
    assert capped.read(4) == b"xxxx"
    assert TOO_LARGE not in environ
    assert capped.read() == b"x" * 7
    assert environ[TOO_LARGE] is True
    assert capped.read() == b""


def test_a_capped_input_does_not_flag_a_body_of_exactly_the_limit():
    environ: dict = {}
    capped = CappedInput(io.BytesIO(b"x" * 10), 10, environ)
    assert capped.read() == b"x" * 10
    assert capped.readline() == b""
    assert TOO_LARGE not in environ


def test_the_guard_gives_an_oversized_request_one_attempt_and_defers_to_the_apps_hook():
    guard = BodyLimitGuard(10, then=lambda request: 5)
    big = Request.blank("/", method="POST", body=b"x" * 11)
    assert guard(big) == 1
    assert big.environ[TOO_LARGE] is True
    small = Request.blank("/", method="POST", body=b"x" * 10)
    assert guard(small) == 5
    assert TOO_LARGE not in small.environ


class LostRace(Exception):
    """An error pyramid_retry would replay."""


mark_error_retryable(LostRace)


def tween_request(attempt: int, attempts: int) -> Request:
    registry = Registry("test")
    registry.settings = {"hyperapi.trusted_proxies": [], "hyperapi.debug": False}
    request = PyramidRequest.blank("/", environ={"retry.attempt": attempt})
    request.environ["retry.attempts"] = attempts
    request.registry = registry
    request.set_property(request_id, "request_id", reify=True)
    return request


def failing(request):
    raise LostRace("lost a race")


def test_the_tween_lets_pyramid_retry_replay_a_lost_race_until_the_last_attempt(caplog):
    tween = negotiation_tween_factory(failing, Registry("test"))
    with pytest.raises(LostRace):
        tween(tween_request(0, 3))
    with caplog.at_level(logging.ERROR, logger="hyperapi.errors"):
        response = tween(tween_request(2, 3))
    assert response.status_int == 500
    assert json.loads(response.body)["type"] == "/api/v1/problems/internal"
    assert response.headers["X-Request-ID"] in caplog.text
