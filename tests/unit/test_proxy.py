"""The client address and public URL rules of hyperapi.proxy, as pure functions."""

from __future__ import annotations

import pytest

from hyperapi.proxy import client_address_of, forwarded_url, parse_address
from hyperapi.settings import as_networks

TRUSTED = as_networks("10.0.0.0/8 2001:db8:1::/48")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.0.2.1", "192.0.2.1"),
        (" 192.0.2.1 ", "192.0.2.1"),
        ("192.0.2.1:4711", "192.0.2.1"),
        ("2001:db8::1", "2001:db8::1"),
        ("[2001:db8::1]:4711", "2001:db8::1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ('"192.0.2.1"', "192.0.2.1"),
    ],
)
def test_parse_address_reads_the_forms_proxies_write(text, expected):
    assert str(parse_address(text)) == expected


@pytest.mark.parametrize("text", ["", "unknown", "_hidden", "300.1.1.1", "example.com"])
def test_parse_address_refuses_what_is_not_an_address(text):
    assert parse_address(text) is None


def test_untrusted_peer_is_the_client_whatever_its_header_says():
    assert client_address_of("203.0.113.9", "198.51.100.1", TRUSTED) == "203.0.113.9"


def test_trusted_peer_without_header_is_the_client():
    assert client_address_of("10.0.0.1", None, TRUSTED) == "10.0.0.1"


def test_trusted_peer_names_the_right_most_untrusted_hop():
    header = "6.6.6.6, 198.51.100.1, 10.0.0.7"
    assert client_address_of("10.0.0.1", header, TRUSTED) == "198.51.100.1"


def test_a_client_cannot_escape_its_address_by_prepending_hops():
    assert client_address_of("10.0.0.1", "1.2.3.4, 198.51.100.1", TRUSTED) == "198.51.100.1"


def test_when_every_hop_is_trusted_the_left_most_is_the_client():
    assert client_address_of("10.0.0.1", "10.9.9.9, 10.0.0.7", TRUSTED) == "10.9.9.9"


def test_garbage_hop_ends_the_walk_at_the_proxy_that_forwarded_it():
    assert client_address_of("10.0.0.1", "198.51.100.1, unknown, 10.0.0.7", TRUSTED) == (
        "10.0.0.7"
    )


def test_ipv6_hops_and_networks():
    header = "2001:db8:2::5, [2001:db8:1::9]:443"
    assert client_address_of("10.0.0.1", header, TRUSTED) == "2001:db8:2::5"


def test_peer_that_is_not_an_address_is_kept_as_given():
    assert client_address_of("", "198.51.100.1", TRUSTED) == "unknown"


def test_nothing_is_trusted_by_default():
    assert client_address_of("10.0.0.1", "198.51.100.1", as_networks("")) == "10.0.0.1"


@pytest.mark.parametrize(
    ("proto", "host", "expected"),
    [
        ("https", "api.example.org", ("https", "api.example.org")),
        ("HTTPS", "api.example.org:8443", ("https", "api.example.org:8443")),
        ("http, https", "evil.example, api.example.org", ("https", "api.example.org")),
        ("https", "[2001:db8::1]:8443", ("https", "[2001:db8::1]:8443")),
        ("ftp", "api.example.org/evil", (None, None)),
        ("", "two words", (None, None)),
        (None, None, (None, None)),
    ],
)
def test_forwarded_url_takes_the_last_value_and_only_if_well_formed(proto, host, expected):
    assert forwarded_url(proto, host) == expected


def test_trusted_proxies_may_be_separated_by_commas_or_spaces():
    networks = as_networks("10.0.0.0/8,192.168.0.0/16 fd00::/8")
    assert [str(n) for n in networks] == ["10.0.0.0/8", "192.168.0.0/16", "fd00::/8"]
