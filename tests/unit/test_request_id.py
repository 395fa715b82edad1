"""Request ids made here are UUIDs of version 4, as ``uuid.uuid4()`` makes them."""

from __future__ import annotations

import uuid

from hyperapi.request_id import new_id


def test_new_ids_are_random_uuids_in_their_usual_text_form():
    ids = [new_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text  # lower-case hex, dashes in their places
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
    # Every bit that is not the version's or the variant's varies (no nibble is stuck).
    for position in range(36):
        if position not in (8, 13, 14, 18, 19, 23):  # dashes, version, variant
            assert len({text[position] for text in ids}) == 16, position
    assert {text[19] for text in ids} == set("89ab")
