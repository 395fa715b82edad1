"""The request class's remembered Accept headers answer as WebOb's own objects do."""

from __future__ import annotations

from webob.acceptparse import create_accept_header

from hyperapi.request import parsed_accept

OFFERS = ["application/json", "application/hal+json", "text/html"]
HEADERS = [
    None,
    "*/*",
    "application/hal+json",
    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "application/json;q=0.5, application/hal+json",
    "image/png",
    "application/json;q=nonsense",
    "",
]


def test_remembered_answers_are_webobs_answers_for_every_header_and_offer_list():
    for header in HEADERS:
        for offers in (OFFERS, OFFERS[:2], OFFERS[::-1], ("text/html",)):
            expected = create_accept_header(header).acceptable_offers(list(offers))
            assert parsed_accept(header).acceptable_offers(offers) == expected, header
            assert parsed_accept(header).acceptable_offers(list(offers)) == expected, header


def test_a_caller_that_changes_its_answer_does_not_change_the_next_one():
    first = parsed_accept("application/hal+json").acceptable_offers(OFFERS)
    first.clear()
    assert parsed_accept("application/hal+json").acceptable_offers(OFFERS)[0][0] == (
        "application/hal+json"
    )
