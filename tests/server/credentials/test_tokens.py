"""Registry login tokens: issued, read back, and refused for every reason a verifier has."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockgate_server.credentials.login import Login, LoginRejected, Rejection
from dockgate_server.credentials.tokens import (
    TOKEN_LIFETIME,
    LoginToken,
    LoginVerifier,
    issue_token,
    new_signing_key,
    read_token,
)
from dockgate_server.engine.sessions import CredentialState, compile_session
from dockgate_server.service.follow import SnapshotFollower
from dockgate_server.store.model import Fleet, Role, Session, SigningKey, User
from dockgate_server.store.port import FleetStore, open_store

A = "111111111111"
NOW = 1_750_000_000.0
HOUR = 3600
DEV = f"arn:aws:iam::{A}:user/dev"
SESSION = f"arn:aws:sts::{A}:assumed-role/worker/s1"

KEY = new_signing_key(NOW)
"""the key of the tests' server"""


def live_session(session_id: str = "sid-1", expires_at: float = NOW + HOUR) -> Session:
    return Session(SESSION, session_id, f"role/{A}/worker", DEV, NOW, expires_at)


def state(
    *keys: SigningKey,
    sessions: tuple[Session, ...] = (),
    revoked: frozenset[str] = frozenset(),
) -> CredentialState:
    held = keys or (KEY,)
    return CredentialState(
        MappingProxyType({s.arn: compile_session(s) for s in sessions}),
        MappingProxyType({key.key_id: key for key in held}),
        revoked,
    )


def verifier(credentials: CredentialState, now: float = NOW + 1) -> LoginVerifier:
    return LoginVerifier(lambda: credentials, lambda: now)


def rejection(verify: Callable[[str], Login], password: str) -> LoginRejected:
    with pytest.raises(LoginRejected) as rejected:
        verify(password)
    if len(password) >= 8:  # a shorter one may occur in any sentence
        assert password not in str(rejected.value)
    for part in password.split(".")[2:]:  # neither the payload nor the MAC, if it has them
        if len(part) >= 8:
            assert part not in str(rejected.value)
    return rejected.value


def encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# -- issuing and reading ------------------------------------------------------------------------


def test_a_token_round_trips() -> None:
    password, token = issue_token(KEY, DEV, None, NOW)
    assert token == LoginToken(token.token_id, DEV, None, NOW, NOW + TOKEN_LIFETIME, KEY.key_id)
    assert TOKEN_LIFETIME == 12 * HOUR
    assert password.startswith(f"dg1.{KEY.key_id}.")
    assert password.count(".") == 3
    assert read_token(password, {KEY.key_id: KEY}) == token
    assert verifier(state())(password) == Login(DEV, NOW + TOKEN_LIFETIME)


def test_every_token_is_new() -> None:
    first, one = issue_token(KEY, DEV, None, NOW)
    second, two = issue_token(KEY, DEV, None, NOW)
    assert first != second
    assert one.token_id != two.token_id


def test_a_session_token_carries_its_session_and_ends_with_it() -> None:
    session = live_session()
    password, token = issue_token(KEY, SESSION, session.session_id, NOW)
    assert token.session_id == session.session_id
    login = verifier(state(sessions=(session,)))(password)
    assert login == Login(SESSION, session.expires_at)  # the session ends before the token


def test_a_session_token_outliving_its_token_lifetime_keeps_the_token_expiry() -> None:
    session = live_session(expires_at=NOW + 36 * HOUR)
    password, _ = issue_token(KEY, SESSION, session.session_id, NOW)
    assert verifier(state(sessions=(session,)))(password).expires_at == NOW + TOKEN_LIFETIME


def test_the_verifier_reads_the_current_credentials_on_every_call() -> None:
    current = [state()]
    verify = LoginVerifier(lambda: current[0], lambda: NOW + 1)
    password, token = issue_token(KEY, DEV, None, NOW)
    assert verify(password).principal == DEV
    current[0] = state(revoked=frozenset({token.token_id}))
    assert rejection(verify, password).rejection is Rejection.REVOKED


# -- rejections ---------------------------------------------------------------------------------


def _valid() -> str:
    return issue_token(KEY, DEV, None, NOW)[0]


def _overlong() -> str:
    _, key_id, payload, mac = _valid().split(".")
    return f"dg1.{key_id}.{payload}{'A' * 5000}.{mac}"


MALFORMED = [
    pytest.param(lambda: "", id="empty"),
    pytest.param(lambda: "hunter2", id="garbage"),
    pytest.param(lambda: "dg2" + _valid()[3:], id="another-version"),
    pytest.param(lambda: "DG1" + _valid()[3:], id="version-in-capitals"),
    pytest.param(lambda: _valid().rsplit(".", 1)[0], id="three-parts"),
    pytest.param(lambda: _valid() + ".extra", id="five-parts"),
    pytest.param(lambda: "...", id="empty-parts"),
    pytest.param(lambda: _valid().rsplit(".", 1)[0] + ".A", id="mac-not-base64url"),
    pytest.param(_overlong, id="overlong"),
    pytest.param(lambda: "x" * 100_000, id="huge-garbage"),
    pytest.param(lambda: "dg1.\x00.\x00.\x00", id="control-characters"),
]


@pytest.mark.parametrize("make", MALFORMED)
def test_malformed_passwords(make: Callable[[], str]) -> None:
    password = make()
    rejected = rejection(verifier(state()), password)
    assert rejected.rejection in (Rejection.MALFORMED, Rejection.UNKNOWN_KEY), rejected
    if password.startswith(f"dg1.{KEY.key_id}.") or not password.startswith("dg1."):
        assert rejected.rejection is Rejection.MALFORMED


def test_a_payload_changed_under_the_original_mac_is_tampered() -> None:
    password, _ = issue_token(KEY, DEV, None, NOW)
    version, key_id, payload, mac = password.split(".")
    fields = json.loads(decode(payload))
    for change in (
        {"p": f"arn:aws:iam::{A}:user/admin"},
        {"e": fields["e"] + 10 * 365 * 24 * HOUR},
        {"s": None, "t": "another-token"},
    ):
        forged = encode(json.dumps({**fields, **change}, separators=(",", ":")).encode())
        tampered = f"{version}.{key_id}.{forged}.{mac}"
        assert rejection(verifier(state()), tampered).rejection is Rejection.TAMPERED


def test_a_changed_mac_is_tampered() -> None:
    password, _ = issue_token(KEY, DEV, None, NOW)
    signed, mac = password.rsplit(".", 1)
    other_mac = issue_token(KEY, DEV, None, NOW)[0].rsplit(".", 1)[1]
    flipped = bytes([decode(mac)[0] ^ 1]) + decode(mac)[1:]
    for forged in (other_mac, encode(flipped), encode(decode(mac)[:-1]), encode(b"")):
        rejected = rejection(verifier(state()), f"{signed}.{forged}")
        assert rejected.rejection is Rejection.TAMPERED


def test_a_key_id_the_verifier_does_not_hold_is_an_unknown_key() -> None:
    stranger = new_signing_key(NOW)
    password, _ = issue_token(stranger, DEV, None, NOW)
    rejected = rejection(verifier(state()), password)
    assert rejected.rejection is Rejection.UNKNOWN_KEY
    # the verifier holds the key that signed it
    assert verifier(state(KEY, stranger))(password).principal == DEV


def test_another_servers_key_with_the_same_id_is_tampered() -> None:
    impostor = SigningKey(KEY.key_id, bytes(32), NOW)
    assert impostor.secret != KEY.secret
    password, _ = issue_token(impostor, DEV, None, NOW)
    assert rejection(verifier(state()), password).rejection is Rejection.TAMPERED


@pytest.mark.parametrize("after", [0, 1, HOUR, 10 * 365 * 24 * HOUR])
def test_a_token_expires(after: float) -> None:
    password, token = issue_token(KEY, DEV, None, NOW)
    assert verifier(state(), token.expires_at - 1)(password).principal == DEV
    rejected = rejection(verifier(state(), token.expires_at + after), password)
    assert rejected.rejection is Rejection.EXPIRED
    assert "expired" in str(rejected)


def test_a_revoked_token_is_refused_and_others_are_not() -> None:
    password, token = issue_token(KEY, DEV, None, NOW)
    other, _ = issue_token(KEY, DEV, None, NOW)
    credentials = state(revoked=frozenset({token.token_id}))
    rejected = rejection(verifier(credentials), password)
    assert rejected.rejection is Rejection.REVOKED
    assert verifier(credentials)(other).principal == DEV


@pytest.mark.parametrize(
    ("sessions", "now", "expected"),
    [
        pytest.param((live_session("sid-2"),), NOW + 1, Rejection.REVOKED, id="replaced"),
        pytest.param((), NOW + 1, Rejection.REVOKED, id="deleted"),
        pytest.param(
            (dataclasses.replace(live_session(), ended="revoked", ended_at=NOW + 5),),
            NOW + 10,
            Rejection.REVOKED,
            id="revoked",
        ),
        pytest.param((live_session(),), NOW + HOUR, Rejection.EXPIRED, id="expired"),
        pytest.param((live_session(),), NOW + HOUR + 1, Rejection.EXPIRED, id="after-expiry"),
        pytest.param(
            (dataclasses.replace(live_session(), ended="expired", ended_at=NOW + HOUR),),
            NOW + HOUR + 1,
            Rejection.EXPIRED,
            id="swept-as-expired",
        ),
    ],
)
def test_a_session_token_dies_with_its_session(
    sessions: tuple[Session, ...], now: float, expected: Rejection
) -> None:
    password, _ = issue_token(KEY, SESSION, "sid-1", NOW)
    rejected = rejection(verifier(state(sessions=sessions), now), password)
    assert rejected.rejection is expected
    if expected is Rejection.EXPIRED:
        assert "expired" in str(rejected)


def test_a_user_token_does_not_depend_on_sessions() -> None:
    password, _ = issue_token(KEY, DEV, None, NOW)
    assert verifier(state(sessions=(live_session(),)))(password).principal == DEV


# -- rotation through the store -----------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FleetStore]:
    with open_store(tmp_path / "store.sqlite3") as opened:
        opened.import_fleet(
            Fleet((A,), (User(A, "dev"),), roles=(Role(A, "worker"),)),
        )
        yield opened


def test_a_token_of_a_retired_key_verifies_until_the_key_is_swept(store: FleetStore) -> None:
    credentials = store
    builder = SnapshotFollower(store)
    first = new_signing_key(NOW)
    credentials.add_signing_key(first)
    snapshot = builder.build()
    assert snapshot.credentials.current_key == first.key_id
    old, _ = issue_token(first, DEV, None, NOW)
    second = new_signing_key(NOW + HOUR)
    credentials.add_signing_key(second)
    snapshot = builder.refresh(snapshot)
    assert snapshot.credentials.current_key == second.key_id
    current = snapshot.credentials.signing_keys[snapshot.credentials.current_key]
    new, _ = issue_token(current, DEV, None, NOW + HOUR)
    verify = LoginVerifier(lambda: snapshot.credentials, lambda: NOW + 2 * HOUR)
    assert verify(old).principal == DEV
    assert verify(new).principal == DEV
    # the retired key is dropped once no token it signed can still be valid
    assert credentials.sweep(NOW + HOUR + TOKEN_LIFETIME, key_lifetime=TOKEN_LIFETIME)
    snapshot = builder.refresh(snapshot)
    assert list(snapshot.credentials.signing_keys) == [second.key_id]
    assert rejection(verify, old).rejection is Rejection.UNKNOWN_KEY
    assert verify(new).principal == DEV


def test_a_token_revoked_in_the_store_is_refused_after_refresh(store: FleetStore) -> None:
    credentials = store
    builder = SnapshotFollower(store)
    credentials.add_signing_key(KEY)
    snapshot = builder.build()
    password, token = issue_token(KEY, DEV, None, NOW)
    verify = LoginVerifier(lambda: snapshot.credentials, lambda: NOW + 1)
    assert verify(password).principal == DEV
    credentials.revoke_token(token.token_id, token.expires_at)
    snapshot = builder.refresh(snapshot)
    assert rejection(verify, password).rejection is Rejection.REVOKED


def test_a_session_token_after_the_session_is_revoked_or_replaced_in_the_store(
    store: FleetStore,
) -> None:
    credentials = store
    builder = SnapshotFollower(store)
    credentials.add_signing_key(KEY)
    credentials.put_session(live_session("sid-1"))
    snapshot = builder.build()
    verify = LoginVerifier(lambda: snapshot.credentials, lambda: NOW + 10)
    first, _ = issue_token(KEY, SESSION, "sid-1", NOW)
    assert verify(first).principal == SESSION
    credentials.put_session(live_session("sid-2"))
    snapshot = builder.refresh(snapshot)
    assert rejection(verify, first).rejection is Rejection.REVOKED
    second, _ = issue_token(KEY, SESSION, "sid-2", NOW)
    assert verify(second).principal == SESSION
    credentials.revoke_session(SESSION, NOW + 5)
    snapshot = builder.refresh(snapshot)
    assert rejection(verify, second).rejection is Rejection.REVOKED


# -- a property ---------------------------------------------------------------------------------

_USER_PASSWORD = issue_token(KEY, DEV, None, NOW)[0]
_SESSION_PASSWORD = issue_token(KEY, SESSION, "sid-1", NOW)[0]
_PROPERTY_STATE = state(sessions=(live_session(),))
_PRINCIPALS = {_USER_PASSWORD: DEV, _SESSION_PASSWORD: SESSION}
_BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@settings(max_examples=500, deadline=None)
@given(
    password=st.sampled_from(sorted(_PRINCIPALS)),
    where=st.integers(min_value=0),
    replacement=st.one_of(st.sampled_from(_BASE64URL + "+/=."), st.characters(codec="utf-8")),
)
def test_one_changed_character_never_verifies_as_another_principal(
    password: str, where: int, replacement: str
) -> None:
    index = where % len(password)
    changed = password[:index] + replacement + password[index + 1 :]
    if changed == password:
        return
    # a password has exactly one accepted spelling: no changed character ever verifies
    assert rejection(verifier(_PROPERTY_STATE), changed)


@pytest.mark.parametrize("password", sorted(_PRINCIPALS))
def test_every_single_base64url_change_is_rejected(password: str) -> None:
    """The property above, exhaustively over the characters a password is made of."""
    verify = verifier(_PROPERTY_STATE)
    for index in range(len(password)):
        for replacement in _BASE64URL + "+/=.":
            changed = password[:index] + replacement + password[index + 1 :]
            if changed != password:
                rejection(verify, changed)


@settings(max_examples=50, deadline=None)
@given(principal=st.sampled_from([DEV, SESSION]), issued=st.floats(NOW - HOUR, NOW))
def test_a_password_with_its_last_character_changed_is_refused(
    principal: str, issued: float
) -> None:
    """The MAC's last character carries unused low bits: `...A` and `...B` decode alike, so a
    lenient decoder would accept three spellings of every password besides its own."""
    password, _ = issue_token(KEY, principal, None, issued)
    verify = verifier(state())
    assert verify(password).principal == principal
    for replacement in _BASE64URL:
        changed = password[:-1] + replacement
        if changed != password:
            assert rejection(verify, changed).rejection in (
                Rejection.MALFORMED,
                Rejection.TAMPERED,
            )


def _respell_mac(password: str, spell: Callable[[str], str]) -> str:
    signed, mac = password.rsplit(".", 1)
    return f"{signed}.{spell(mac)}"


@pytest.mark.parametrize(
    "spell",
    [
        pytest.param(lambda part: part + "=" * (-len(part) % 4), id="padded"),
        pytest.param(lambda part: part + "==", id="extra-padding"),
        pytest.param(lambda part: part.replace("-", "+").replace("_", "/"), id="standard-alphabet"),
        pytest.param(lambda part: part[:4] + "\n" + part[4:], id="embedded-newline"),
        pytest.param(lambda part: part[:4] + " " + part[4:], id="embedded-space"),
    ],
)
def test_another_spelling_of_the_same_mac_is_refused(spell: Callable[[str], str]) -> None:
    for principal in (DEV, SESSION):
        while True:  # the standard alphabet needs a `-` or `_` to respell
            password, _ = issue_token(KEY, principal, None, NOW)
            respelled = _respell_mac(password, spell)
            if respelled != password:
                break
        same = "".join(respelled.rsplit(".", 1)[1].split())  # the lenient decoder's reading
        assert decode(same) == decode(password.rsplit(".", 1)[1])
        assert verifier(state())(password).principal == principal
        assert rejection(verifier(state()), respelled).rejection is Rejection.MALFORMED
