"""The precondition evaluator and its parsers (RFC 9110 §13, §8.8.3, §5.6.7)."""

from __future__ import annotations

import datetime as dt

import pytest

from hyperapi.resources.preconditions import (
    ANY,
    MALFORMED,
    Conditions,
    EntityTag,
    Outcome,
    Validators,
    evaluate,
    parse_entity_tag,
    parse_http_date,
    parse_tag_list,
    strong_match,
    weak_match,
)

MODIFIED = dt.datetime(1994, 11, 6, 8, 49, 37, 250000, tzinfo=dt.UTC)
CURRENT = Validators('"7"', MODIFIED)


def conditions(**headers: str) -> Conditions:
    return Conditions.from_headers({k.replace("_", "-"): v for k, v in headers.items()})


# -- entity tags ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"abc"', EntityTag('"abc"')),
        ('W/"abc"', EntityTag('"abc"', weak=True)),
        ('""', EntityTag('""')),
        (' "x" ', EntityTag('"x"')),
        ("abc", None),
        ('"a"b"', None),
        ('w/"abc"', None),  # RFC 9110 §8.8.3: "W/" is case-sensitive
        ('"a b"', None),  # no spaces inside an opaque-tag
    ],
)
def test_entity_tags_follow_the_grammar(value, expected):
    assert parse_entity_tag(value) == expected


def test_tag_lists_parse_star_lists_and_refuse_the_malformed():
    assert parse_tag_list(None) is None
    assert parse_tag_list("*") is ANY
    assert parse_tag_list('"a", W/"b",,"c"') == (
        EntityTag('"a"'),
        EntityTag('"b"', weak=True),
        EntityTag('"c"'),
    )
    assert parse_tag_list('*, "a"') is MALFORMED
    assert parse_tag_list('"a", b') is MALFORMED
    assert parse_tag_list("") is MALFORMED


def test_comparisons_are_strong_or_weak_as_rfc_9110_table_3_says():
    w1, w2, s1, s2 = (
        EntityTag('"1"', weak=True),
        EntityTag('"2"', weak=True),
        EntityTag('"1"'),
        EntityTag('"2"'),
    )
    assert [strong_match(*pair) for pair in ((w1, w1), (w1, w2), (w1, s1), (s1, s1))] == [
        False,
        False,
        False,
        True,
    ]
    assert [weak_match(*pair) for pair in ((w1, w1), (w1, w2), (w1, s1), (s1, s1))] == [
        True,
        False,
        True,
        True,
    ]
    assert not strong_match(s1, s2)


# -- dates ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
    ],
)
def test_all_three_http_date_formats_are_accepted(value):
    assert parse_http_date(value) == MODIFIED.replace(microsecond=0)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "yesterday",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 31 Feb 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT",
        "1994-11-06T08:49:37Z",
    ],
)
def test_anything_else_is_not_a_date(value):
    assert parse_http_date(value) is None


def test_a_two_digit_year_never_lands_more_than_50_years_ahead():
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert parse_http_date("Monday, 01-Jan-76 00:00:00 GMT", now=now).year == 2076
    assert parse_http_date("Thursday, 01-Jan-77 00:00:00 GMT", now=now).year == 1977


# -- the evaluator ----------------------------------------------------------------------


def test_no_preconditions_means_proceed():
    assert not conditions()
    assert evaluate("PUT", conditions(), CURRENT) is Outcome.PROCEED


def test_if_match_is_false_without_a_current_representation():
    assert evaluate("PUT", conditions(If_Match="*"), None) is Outcome.FAILED
    assert evaluate("PUT", conditions(If_None_Match="*"), None) is Outcome.PROCEED


def test_dates_compare_at_one_second_resolution():
    same_second = "Sun, 06 Nov 1994 08:49:37 GMT"
    assert evaluate("GET", conditions(If_Modified_Since=same_second), CURRENT) is (
        Outcome.NOT_MODIFIED
    )
    assert evaluate("PUT", conditions(If_Unmodified_Since=same_second), CURRENT) is (
        Outcome.PROCEED
    )


def test_if_modified_since_applies_to_get_and_head_only():
    header = conditions(If_Modified_Since="Sun, 06 Nov 1994 08:49:37 GMT")
    assert evaluate("HEAD", header, CURRENT) is Outcome.NOT_MODIFIED
    assert evaluate("POST", header, CURRENT) is Outcome.PROCEED


def test_a_resource_without_last_modified_ignores_the_date_conditions():
    etag_only = Validators('"7"', None)
    header = conditions(
        If_Modified_Since="Sun, 06 Nov 1994 08:49:37 GMT",
        If_Unmodified_Since="Sun, 06 Nov 1994 08:49:37 GMT",
    )
    assert evaluate("GET", header, etag_only) is Outcome.PROCEED


def test_a_malformed_if_none_match_fails_writes_but_not_reads():
    header = conditions(If_None_Match="7")
    assert evaluate("GET", header, CURRENT) is Outcome.PROCEED
    assert evaluate("DELETE", header, CURRENT) is Outcome.FAILED
