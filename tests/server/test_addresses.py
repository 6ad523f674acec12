"""`HOST:PORT` options: what is an address, and the error that names the option otherwise."""

from __future__ import annotations

import pytest

from dockgate_server.addresses import Address, AddressError, parse_address

VALID = [
    ("127.0.0.1:50051", Address("127.0.0.1", 50051), "127.0.0.1:50051"),
    ("localhost:1", Address("localhost", 1), "localhost:1"),
    ("dockgate.internal.example:65535", Address("dockgate.internal.example", 65535), None),
    ("my_host-1:8080", Address("my_host-1", 8080), None),
    ("0.0.0.0:9464", Address("0.0.0.0", 9464), None),
    ("[::1]:50051", Address("::1", 50051), "[::1]:50051"),
    ("[::]:443", Address("::", 443), "[::]:443"),
    ("[2001:db8::7]:00080", Address("2001:db8::7", 80), "[2001:db8::7]:80"),
]


@pytest.mark.parametrize(("text", "address", "target"), VALID)
def test_valid_addresses(text: str, address: Address, target: str | None) -> None:
    assert parse_address(text, "--server") == address
    assert parse_address(text, "--listen", listen=True) == address
    assert address.target == (target or text)


INVALID = [
    ("localhost", "the port is missing"),
    ("127.0.0.1", "the port is missing"),
    ("", "the port is missing"),
    ("127.0.0.1:abc", "the port `abc` is not a number"),
    ("127.0.0.1:", "the port `` is not a number"),
    ("127.0.0.1:+1", "the port `+1` is not a number"),
    ("127.0.0.1: 1", "the port ` 1` is not a number"),
    ("127.0.0.1:²", "the port `²` is not a number"),
    ("127.0.0.1:-1", "the port `-1` is not a number"),
    ("127.0.0.1:123456", "the port `123456` is not a number"),
    (":99999", "the host is missing"),
    (":50051", "the host is missing"),
    ("localhost:99999", "to 65535"),
    ("localhost:65536", "to 65535"),
    ("http://localhost:50051", "expected HOST:PORT (no scheme or path"),
    ("https://dockgate.example", "expected HOST:PORT (no scheme or path"),
    ("localhost:50051/path", "expected HOST:PORT (no scheme or path"),
    ("dns:///localhost:50051", "expected HOST:PORT (no scheme or path"),
    ("unix:/tmp/socket:1", "expected HOST:PORT (no scheme or path"),
    ("user@host:1", "expected HOST:PORT (no scheme or path"),
    ("host name:1", "expected HOST:PORT (no scheme or path"),
    ("::1:50051", "expected HOST:PORT (no scheme or path; IPv6 as `[::1]:PORT`)"),
    ("[::1]", "IPv6 as `[::1]:PORT`"),
    ("[nope]:1", "`nope` in brackets is not an IPv6 address"),
    ("[127.0.0.1]:1", "`127.0.0.1` in brackets is not an IPv6 address"),
    ("-host:1", "expected HOST:PORT (no scheme or path"),
]


@pytest.mark.parametrize(("text", "reason"), INVALID)
def test_invalid_addresses_name_the_option(text: str, reason: str) -> None:
    for listen in (False, True):
        with pytest.raises(AddressError) as refused:
            parse_address(text, "--admin-listen", listen=listen)
        message = str(refused.value)
        assert message.startswith(f"--admin-listen `{text}`: ")
        assert reason in message
        assert isinstance(refused.value, ValueError)


def test_port_0_is_any_free_port_for_a_listening_option_only() -> None:
    assert parse_address("127.0.0.1:0", "--listen", listen=True) == Address("127.0.0.1", 0)
    with pytest.raises(AddressError, match=r"^--server `127\.0\.0\.1:0`: the port must be 1"):
        parse_address("127.0.0.1:0", "--server")
