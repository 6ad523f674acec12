"""The client's IAM context: the source address behind trusted proxies, TLS, Region, time."""

from __future__ import annotations

from ipaddress import ip_network

import pytest

from dockgate_server.registry.context import ClientFacts, ContextError, client_context, source_ip
from dockgate_server.registry.routes import Registry

PROXIES = (ip_network("10.0.0.0/8"), ip_network("::1/128"))


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("192.0.2.1", None, "192.0.2.1"),
        ("192.0.2.1", "198.51.100.7", "192.0.2.1"),  # not a trusted proxy: the header is ignored
        ("10.0.0.2", "198.51.100.7", "198.51.100.7"),
        ("10.0.0.2", "203.0.113.9, 198.51.100.7, 10.0.0.3", "198.51.100.7"),  # right-most untrusted
        ("10.0.0.2", "10.0.0.4, 10.0.0.3", "10.0.0.4"),  # every hop a proxy: the left-most
        ("[::1]", "2001:db8::5", "2001:db8::5"),
        ("::ffff:192.0.2.1", None, "192.0.2.1"),
        ("10.0.0.2", " , ", "10.0.0.2"),
    ],
)
def test_the_source_is_the_right_most_hop_that_is_not_a_trusted_proxy(
    peer: str, forwarded: str | None, expected: str
) -> None:
    assert source_ip(peer, forwarded, PROXIES) == expected


@pytest.mark.parametrize(("peer", "forwarded"), [("unix-socket", None), ("10.0.0.2", "evil, x")])
def test_an_address_that_cannot_be_told_is_an_error(peer: str, forwarded: str | None) -> None:
    with pytest.raises(ContextError):
        source_ip(peer, forwarded, PROXIES)


def test_the_context_has_the_keys_the_registry_gate_decides_with() -> None:
    registry = Registry("111122223333", "eu-west-1")
    context = client_context(ClientFacts("192.0.2.1"), registry, 1_700_000_000.9)
    assert context == {
        "aws:SourceIp": "192.0.2.1",
        "aws:SecureTransport": "false",
        "aws:RequestedRegion": "eu-west-1",
        "aws:CurrentTime": "2023-11-14T22:13:20Z",
        "aws:EpochTime": "1700000000",
    }
    told = client_context(
        ClientFacts("192.0.2.1", secure=False), registry, 0, secure_transport=True
    )
    assert told["aws:SecureTransport"] == "false"
    assert (
        client_context(ClientFacts("192.0.2.1"), registry, 0, secure_transport=True)[
            "aws:SecureTransport"
        ]
        == "true"
    )
