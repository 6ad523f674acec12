"""The options a `postgresql://` URL carries for Dockgate, and the ones it passes to libpq."""

from __future__ import annotations

import pytest

from dockgate_server.store.errors import StoreError
from dockgate_server.store.postgres.connection import parse_url

URL = "postgresql://app@db.internal:5432/fleet"


def test_defaults() -> None:
    settings = parse_url(URL, URL)
    assert (settings.listen, settings.poll, settings.pool, settings.timeout) == (True, 1.0, 4, 5.0)
    assert settings.conninfo == URL


def test_dockgate_options_are_taken_out_and_the_rest_passed_on() -> None:
    settings = parse_url(f"{URL}?listen=off&sslmode=require&poll=0.5&pool=8&timeout=2", URL)
    assert (settings.listen, settings.poll, settings.pool, settings.timeout) == (False, 0.5, 8, 2.0)
    assert settings.conninfo == f"{URL}?sslmode=require"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("listen=no", "option `listen` must be `on` or `off`, not `no`"),
        ("poll=soon", "option `poll` must be a number of seconds of at least 0.01, not `soon`"),
        ("poll=0", "option `poll` must be a number of seconds"),
        ("pool=0", "option `pool` must be a whole number of at least 1, not `0`"),
        ("pool=2.5", "option `pool` must be a whole number"),
        ("timeout=nan", "option `timeout` must be a number of seconds"),
    ],
)
def test_a_bad_option_is_named(query: str, message: str) -> None:
    with pytest.raises(StoreError, match=f"^store `{URL}`: {message}"):
        parse_url(f"{URL}?{query}", URL)
