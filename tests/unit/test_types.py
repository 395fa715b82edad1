"""The strict colander types take JSON values as they are."""

from __future__ import annotations

import colander
import pytest

from hyperapi.schemas import types
from hyperapi.schemas.users import user_body


def node(typ):
    return colander.SchemaNode(typ, name="field")


@pytest.mark.parametrize("value", [True, 1, 1.5, None, [], {}])
def test_string_refuses_non_strings(value):
    with pytest.raises(colander.Invalid):
        node(types.String()).deserialize(value)


@pytest.mark.parametrize("value", ["a\x00b", "\ud800"])
def test_string_refuses_what_a_database_cannot_store(value):
    with pytest.raises(colander.Invalid):
        node(types.String()).deserialize(value)


@pytest.mark.parametrize("value", [True, False, "5", 5.0, 2**64])
def test_integer_refuses_booleans_strings_floats_and_huge_numbers(value):
    with pytest.raises(colander.Invalid):
        node(types.Integer()).deserialize(value)


@pytest.mark.parametrize("value", ["yes", "no", "true", 1, 0, None])
def test_boolean_takes_only_json_booleans(value):
    with pytest.raises(colander.Invalid):
        node(types.Boolean()).deserialize(value)
    assert node(types.Boolean()).deserialize(False) is False


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-01-02T03:04:05Z", "2026-01-02T03:04:05.000000Z"),
        ("2026-01-02T03:04:05.5-02:00", "2026-01-02T05:04:05.500000Z"),
    ],
)
def test_datetime_needs_an_offset_and_is_normalised_to_utc(value, expected):
    assert types.format_datetime(node(types.DateTime()).deserialize(value)) == expected


@pytest.mark.parametrize("value", ["2026-01-02T03:04:05", "tomorrow", 5, "9" * 50])
def test_datetime_refuses_naive_or_malformed_values(value):
    with pytest.raises(colander.Invalid):
        node(types.DateTime()).deserialize(value)


@pytest.mark.parametrize(
    "value",
    [3, "3", "http://h/api/v1/students/3", "/api/v1/students/3", "https://x/p/api/v1/students/3/"],
)
def test_reference_takes_urls_and_ids(value):
    assert node(types.Reference("students")).deserialize(value) == 3


@pytest.mark.parametrize("value", [0, -1, True, "http://h/api/v1/classes/3", "3x", None, 2.0])
def test_reference_refuses_other_things(value):
    with pytest.raises(colander.Invalid):
        node(types.Reference("students")).deserialize(value)


def test_mapping_names_each_unknown_and_read_only_key():
    with pytest.raises(colander.Invalid) as caught:
        user_body().deserialize(
            {
                "username": "a",
                "email": "a@b.c",
                "password": "12345678",
                "is_admin": True,
                "colour": "red",
            }
        )
    assert caught.value.asdict() == {"is_admin": "is read-only", "colour": "is not a known field"}
