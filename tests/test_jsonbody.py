"""ai_usage.jsonbody and ApiPage's lazy payload: exact numbers, whole-body syntax checks, the undecoded top level."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from ai_usage.hooks.pages import ApiPage
from ai_usage.jsonbody import InvalidTextError, JsonBodyError, decode_json, scan_object, top_level


def test_numbers_decode_exactly() -> None:
    doc = decode_json('{"cents": 2450.125487, "tiny": 1e-30, "big": 12345678901234567890123, "f": 1.10}')
    assert doc == {"cents": Decimal("2450.125487"), "tiny": Decimal("1E-30"), "big": 12345678901234567890123,
                   "f": Decimal("1.10")}
    assert str(doc["f"]) == "1.10"  # the vendor's own digits, not a float's
    assert doc == json.loads('{"cents": 2450.125487, "tiny": 1e-30, "big": 12345678901234567890123, "f": 1.10}',
                             parse_float=Decimal)


@pytest.mark.parametrize("body", ['{"data": [1, 2,}', '{"data": [1, 2]', '{"a": 1}{', "", "NaN", '{"a": 01}',
                                  '{"a": "\\x"}'])
def test_a_body_that_is_not_json_is_refused_whole(body: str) -> None:
    with pytest.raises(JsonBodyError):
        scan_object(body)
    with pytest.raises(JsonBodyError):
        decode_json(body)


def test_scan_object_leaves_members_undecoded_and_top_level_keeps_the_envelope() -> None:
    body = '{"data": [{"a": 1.5}, {"a": 2}], "pagination": {"page": 1, "hasNextPage": true}, "has_more": false}'
    members = scan_object(body)
    assert members is not None and set(members) == {"data", "pagination", "has_more"}
    assert bytes(members["data"]) == b'[{"a": 1.5}, {"a": 2}]'
    assert top_level(members) == {"pagination": {"page": 1, "hasNextPage": True}, "has_more": False}


def test_scan_object_of_another_json_value_is_none() -> None:
    assert scan_object('[{"email": "a@b.c"}]') is None
    assert scan_object("42") is None


def test_api_page_decodes_its_payload_once_on_first_use() -> None:
    text = '{"data": [{"amount": 0.1}]}'
    page = ApiPage(endpoint="x", n=1, request={}, status=200, text=text, members=scan_object(text))
    first = page.payload
    assert first == {"data": [{"amount": Decimal("0.1")}]}
    assert page.payload is first
    given = ApiPage(endpoint="x", n=1, request={}, status=200, text="a,b\n1,2", payload=[["a", "b"], ["1", "2"]])
    assert given.payload == [["a", "b"], ["1", "2"]] and given.members is None


@pytest.mark.parametrize(("body", "escape", "at"), [
    ('{"a": "\\ud800"}', "\\ud800", 7),                          # a high half alone
    ('{"a": "x\\udc00"}', "\\udc00", 8),                         # a low half alone
    ('{"a": "\\ud83d\\ude00", "b": "\\ud83d"}', "\\ud83d", 28),  # a proper pair, then a lone half
    ('{"a": "\\ud83d\\ud83d\\ude00"}', "\\ud83d", 7),            # a high half followed by a pair
    ('{"a": "\\\\\\ud800"}', "\\ud800", 9),                      # an escaped backslash, then the escape
    ('[1, "\\uDBFF"]', "\\uDBFF", 5),                            # upper case, in a bare array
])
def test_a_lone_surrogate_is_named_where_it_is(body: str, escape: str, at: int) -> None:
    for decode in (scan_object, decode_json):
        with pytest.raises(InvalidTextError) as err:
            decode(body)
        assert f"lone UTF-16 surrogate {escape} at character {at}" in str(err.value)
        assert body[at:at + 6] == escape


@pytest.mark.parametrize("body", [
    '{"a": "\\ud83d',                # cut between the halves of a pair: a cut body, worth another try
    '{"a": "\\ud83d\\ude00"',        # a pair, then cut
    '{"a": 1',
    "NaN",                           # the standard library would accept it; still plain "not JSON"
])
def test_a_cut_body_is_not_mistaken_for_bad_text(body: str) -> None:
    with pytest.raises(JsonBodyError) as err:
        decode_json(body)
    assert not isinstance(err.value, InvalidTextError)


def test_escaped_backslashes_and_proper_pairs_are_text() -> None:
    assert decode_json('{"a": "\\\\ud800", "b": "\\ud83d\\ude00"}') == {"a": "\\ud800", "b": "\U0001F600"}
