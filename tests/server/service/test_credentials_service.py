"""Temporary credentials end to end: a running server, its admin API, the client, the CLI.

The server's clock is moved with `--clock-offset-file`, so expiry and sweeping are seen without
waiting and without a restart.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dockgate import (
    AccessDeniedError,
    AdminClient,
    Client,
    InvalidRequestError,
    NotFoundError,
    Outcome,
    UnauthenticatedError,
)
from tests.server.service.conftest import TOKEN, RunningServer, start_server

ACCOUNT = "111122223333"
DEV = f"arn:aws:iam::{ACCOUNT}:user/dev"
OUTSIDER = f"arn:aws:iam::{ACCOUNT}:user/outsider"
BUILDER = f"arn:aws:iam::{ACCOUNT}:role/builder"
APP = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/team-a/app"
OTHER = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/team-b/app"
PULL = "ecr:BatchGetImage"
PUSH = "ecr:PutImage"
HOUR = 3600


def _document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


BUNDLE: dict[str, Any] = {
    "format": "dockgate-bundle/1",
    "accounts": {
        ACCOUNT: {
            "authorizationDetails": {
                "UserDetailList": [
                    {
                        "UserName": "dev",
                        "Path": "/",
                        "Tags": [{"Key": "team", "Value": "a"}],
                        "UserPolicyList": [
                            {
                                "PolicyName": "dev",
                                "PolicyDocument": _document(
                                    {
                                        "Effect": "Allow",
                                        "Action": [
                                            "ecr:GetAuthorizationToken",
                                            "sts:GetFederationToken",
                                        ],
                                        "Resource": "*",
                                    },
                                    {"Effect": "Allow", "Action": "ecr:*", "Resource": APP},
                                ),
                            }
                        ],
                    },
                    {"UserName": "outsider", "Path": "/"},
                ],
                "RoleDetailList": [
                    {
                        "RoleName": "builder",
                        "Path": "/",
                        "MaxSessionDuration": 7200,
                        "AssumeRolePolicyDocument": _document(
                            {
                                "Effect": "Allow",
                                "Principal": {"AWS": DEV},
                                "Action": ["sts:AssumeRole", "sts:TagSession"],
                            }
                        ),
                        "RolePolicyList": [
                            {
                                "PolicyName": "build",
                                "PolicyDocument": _document(
                                    {
                                        "Effect": "Allow",
                                        "Action": "ecr:GetAuthorizationToken",
                                        "Resource": "*",
                                    },
                                    {
                                        "Effect": "Allow",
                                        "Action": "ecr:*",
                                        "Resource": "arn:aws:ecr:us-east-1:"
                                        f"{ACCOUNT}:repository/${{aws:PrincipalTag/team}}/*",
                                    },
                                ),
                            }
                        ],
                    }
                ],
            },
            "repositories": [{"repositoryArn": APP}, {"repositoryArn": OTHER}],
        }
    },
}


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data_dir = tmp_path_factory.mktemp("credentials")
    (data_dir / "clock-offset").write_text("0")
    server = start_server(
        data_dir,
        "--clock-offset-file",
        str(data_dir / "clock-offset"),
        "--sweep-interval",
        "0.2",
        seed=False,
    )
    try:
        with AdminClient(server.admin, TOKEN) as admin:
            admin.import_bundle(BUNDLE)
        yield server
    finally:
        server.stop()


@pytest.fixture
def admin(running: RunningServer) -> Iterator[AdminClient]:
    with AdminClient(running.admin, TOKEN) as client:
        yield client


@pytest.fixture
def client(running: RunningServer) -> Iterator[Client]:
    with Client(running.decision) as decisions:
        yield decisions


@pytest.fixture
def move_clock(running: RunningServer) -> Iterator[Callable[[float], None]]:
    """Set the server's clock offset, and put it back after the test."""
    path = running.data_dir / "clock-offset"

    def move(seconds: float) -> None:
        path.write_text(f"{seconds}\n")
        time.sleep(0.15)  # a few refresh polls of every process

    yield move
    move(0)


def _outcome(client: Client, principal: str, action: str, resource: str, revision: int) -> Outcome:
    return client.authorize(principal, action, resource, at_least_revision=revision).outcome


# -- sessions -------------------------------------------------------------------------------


def test_assume_role_then_decisions_as_the_session(admin: AdminClient, client: Client) -> None:
    session = admin.assume_role(DEV, BUILDER, "build-1", tags={"team": "team-a"})
    assert session.arn == f"arn:aws:sts::{ACCOUNT}:assumed-role/builder/build-1"
    assert session.expires_at - session.issued_at == HOUR
    # the session tag (team-a) overrides nothing here; it feeds ${aws:PrincipalTag/team}
    assert _outcome(client, session.arn, PUSH, APP, session.revision) is Outcome.ALLOWED
    assert _outcome(client, session.arn, PUSH, OTHER, session.revision) is Outcome.IMPLICITLY_DENIED


def test_a_session_policy_narrows_the_role(admin: AdminClient, client: Client) -> None:
    only_pull = _document({"Effect": "Allow", "Action": PULL, "Resource": "*"})
    session = admin.assume_role(
        DEV, BUILDER, "narrow", tags={"team": "team-a"}, policy=only_pull, duration=7200
    )
    assert session.expires_at - session.issued_at == 7200
    assert _outcome(client, session.arn, PULL, APP, session.revision) is Outcome.ALLOWED
    decision = client.authorize(session.arn, PUSH, APP, at_least_revision=session.revision)
    assert decision.outcome is Outcome.IMPLICITLY_DENIED


def test_a_caller_the_trust_policy_does_not_name_is_denied(admin: AdminClient) -> None:
    with pytest.raises(AccessDeniedError) as raised:
        admin.assume_role(OUTSIDER, BUILDER, "nope")
    assert raised.value.reason == "ACCESS_DENIED"
    assert "sts:AssumeRole" in str(raised.value)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"duration": 600}, "duration_seconds"),
        ({"duration": 7201}, "duration_seconds"),
        ({"session_name": "x"}, "session_name"),
        ({"role_arn": f"arn:aws:iam::{ACCOUNT}:role/missing"}, "role_arn"),
        ({"tags": {"aws:reserved": "x"}}, "tags/aws:reserved"),
    ],
)
def test_malformed_assume_role_names_the_field(
    admin: AdminClient, change: dict[str, Any], field: str
) -> None:
    arguments: dict[str, Any] = {"caller": DEV, "role_arn": BUILDER, "session_name": "ok-name"}
    arguments.update(change)
    with pytest.raises(InvalidRequestError) as raised:
        admin.assume_role(**arguments)
    assert raised.value.reason == "INVALID_CREDENTIAL_REQUEST"
    assert raised.value.field == field


def test_an_invalid_session_policy_is_refused_with_its_pointer(admin: AdminClient) -> None:
    broken = _document({"Effect": "Allow", "Action": PULL, "Resource": "*", "Principal": "*"})
    with pytest.raises(InvalidRequestError) as raised:
        admin.assume_role(DEV, BUILDER, "broken", policy=broken)
    assert raised.value.reason == "INVALID_POLICY"
    assert raised.value.metadata["pointer"] == "/Statement/0/Principal"


def test_federated_user_gets_the_intersection(admin: AdminClient, client: Client) -> None:
    both = _document({"Effect": "Allow", "Action": [PULL, PUSH], "Resource": [APP, OTHER]})
    session = admin.get_federation_token(DEV, "dev-laptop", policy=both)
    assert session.arn == f"arn:aws:sts::{ACCOUNT}:federated-user/dev-laptop"
    assert session.expires_at - session.issued_at == 12 * HOUR
    assert _outcome(client, session.arn, PUSH, APP, session.revision) is Outcome.ALLOWED
    # the session policy allows team-b, the user does not
    assert _outcome(client, session.arn, PUSH, OTHER, session.revision) is Outcome.IMPLICITLY_DENIED


def test_a_session_expires_on_the_server_clock(
    admin: AdminClient, client: Client, move_clock: Callable[[float], None]
) -> None:
    session = admin.assume_role(DEV, BUILDER, "short", tags={"team": "team-a"}, duration=900)
    assert _outcome(client, session.arn, PULL, APP, session.revision) is Outcome.ALLOWED
    move_clock(901)
    decision = client.authorize(session.arn, PULL, APP, explain=True)
    assert decision.outcome is Outcome.IMPLICITLY_DENIED
    assert any("expired" in reason.detail for reason in decision.reasons)
    # the sweeper ends it without a restart; its ARN stays refused, not read as a role session
    # issued elsewhere
    deadline = time.monotonic() + 10
    while any(s.arn == session.arn for s in _sessions(admin)):
        assert time.monotonic() < deadline, "the expired session was not swept"
        time.sleep(0.1)
    swept = client.authorize(
        session.arn, PULL, APP, at_least_revision=admin.revision(), explain=True
    )
    assert swept.outcome is Outcome.IMPLICITLY_DENIED
    assert any("expired" in reason.detail for reason in swept.reasons)


def test_revoking_a_session_ends_it_at_once(admin: AdminClient, client: Client) -> None:
    session = admin.assume_role(DEV, BUILDER, "revoked", tags={"team": "team-a"})
    assert _outcome(client, session.arn, PULL, APP, session.revision) is Outcome.ALLOWED
    revision = admin.revoke_session(session.arn)
    decision = client.authorize(session.arn, PULL, APP, at_least_revision=revision, explain=True)
    assert decision.outcome is Outcome.IMPLICITLY_DENIED
    assert any("revoked" in reason.detail for reason in decision.reasons)
    with pytest.raises(NotFoundError):
        admin.revoke_session(session.arn)


def _sessions(admin: AdminClient) -> list[Any]:
    from dockgate.v1 import admin_pb2  # noqa: PLC0415 - the raw listing, for this check only

    listing = admin.stub.ListSessions(admin_pb2.ListRequest(), metadata=admin.metadata)
    return list(listing.sessions)


# -- login tokens ---------------------------------------------------------------------------


def test_a_login_password_verifies_as_its_principal(admin: AdminClient) -> None:
    login = admin.get_login_password(DEV)
    assert login.principal == DEV
    assert admin.verify_login_password(login.password) == DEV
    assert login.password not in repr(login)


def test_a_login_needs_get_authorization_token(admin: AdminClient) -> None:
    with pytest.raises(AccessDeniedError) as raised:
        admin.get_login_password(OUTSIDER)
    assert "ecr:GetAuthorizationToken" in str(raised.value)


def _rejection(admin: AdminClient, password: str) -> str:
    with pytest.raises(UnauthenticatedError) as raised:
        admin.verify_login_password(password)
    assert raised.value.reason == "INVALID_CREDENTIALS"
    return raised.value.metadata["rejection"]


def test_every_rejection_reaches_the_caller(
    admin: AdminClient, move_clock: Callable[[float], None]
) -> None:
    login = admin.get_login_password(DEV)
    head, payload, mac = login.password.rsplit(".", 2)
    assert _rejection(admin, "hunter2") == "malformed"
    assert _rejection(admin, f"{head}.{payload}.{mac[::-1]}") == "tampered"
    assert _rejection(admin, f"dg1.kforeign0000.{payload}.{mac}") == "unknown-key"
    revoked = admin.get_login_password(DEV)
    admin.revoke_login_token(revoked.token_id)
    assert _rejection(admin, revoked.password) == "revoked"
    move_clock(12 * HOUR)
    assert _rejection(admin, login.password) == "expired"


def test_a_session_token_dies_with_its_session(
    admin: AdminClient, move_clock: Callable[[float], None]
) -> None:
    session = admin.assume_role(DEV, BUILDER, "tokened", duration=900)
    login = admin.get_login_password(session.arn)
    assert login.expires_at == session.expires_at  # never outlives its session
    assert admin.verify_login_password(login.password) == session.arn
    replaced = admin.assume_role(DEV, BUILDER, "tokened", duration=900)
    assert replaced.arn == session.arn
    assert _rejection(admin, login.password) == "revoked"
    fresh = admin.get_login_password(session.arn)
    move_clock(901)
    assert _rejection(admin, fresh.password) == "expired"


def test_rotation_keeps_old_tokens_valid(admin: AdminClient) -> None:
    before = admin.get_login_password(DEV)
    key_id = admin.rotate_login_key()
    after = admin.get_login_password(DEV)
    assert after.password.split(".")[1] == key_id != before.password.split(".")[1]
    assert admin.verify_login_password(before.password) == DEV
    assert admin.verify_login_password(after.password) == DEV


# -- the command line -----------------------------------------------------------------------


def _dockgate(running: RunningServer, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "DOCKGATE_ADMIN_TOKEN"}
    return subprocess.run(
        [sys.executable, "-m", "dockgate_server.cli", *arguments, "--server", running.admin],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
        check=False,
    )


def test_cli_login_flow(running: RunningServer, admin: AdminClient) -> None:
    token_file = running.data_dir / "admin-token"
    token_file.write_text(TOKEN)  # the CLI reads the token from the data directory
    data = ("--data-dir", str(running.data_dir))
    assumed = _dockgate(
        running,
        "assume-role",
        "--caller",
        DEV,
        "--role-arn",
        BUILDER,
        "--session-name",
        "cli",
        "--tag",
        "team=team-a",
        *data,
    )
    assert assumed.returncode == 0, assumed.stderr
    arn = json.loads(assumed.stdout)["arn"]
    login = _dockgate(running, "get-login-password", "--principal", arn, *data)
    assert login.returncode == 0, login.stderr
    assert admin.verify_login_password(login.stdout.strip()) == arn
    denied = _dockgate(running, "get-login-password", "--principal", OUTSIDER, *data)
    assert denied.returncode == 1
    assert "PERMISSION_DENIED" in denied.stderr
    missing = _dockgate(
        running, "get-login-password", "--principal", DEV, "--data-dir", str(Path("/nonexistent"))
    )
    assert missing.returncode == 2
    assert "DOCKGATE_ADMIN_TOKEN" in missing.stderr


def test_passwords_never_reach_the_log(running: RunningServer, admin: AdminClient) -> None:
    login = admin.get_login_password(DEV)
    admin.verify_login_password(login.password)
    with pytest.raises(UnauthenticatedError):
        admin.verify_login_password(login.password + "x")
    log = (running.data_dir / "server.log").read_text()
    signature = login.password.rsplit(".", 1)[1]
    assert signature not in log


def test_readme_login_flow_against_the_sample_fleet(tmp_path: Path) -> None:
    """The README's commands, against a server seeded with the sample fleet."""
    sample = start_server(tmp_path)
    try:
        (tmp_path / "admin-token").write_text(TOKEN)
        data = ("--data-dir", str(tmp_path))
        pusher = "arn:aws:iam::111122223333:user/ci/pusher"
        assumed = _dockgate(
            sample,
            "assume-role",
            "--caller",
            pusher,
            "--role-arn",
            "arn:aws:iam::111122223333:role/deploy",
            "--session-name",
            "build-42",
            "--duration",
            "900",
            "--tag",
            "team=a",
            *data,
        )
        assert assumed.returncode == 0, assumed.stderr
        arn = json.loads(assumed.stdout)["arn"]
        assert arn == "arn:aws:sts::111122223333:assumed-role/deploy/build-42"
        for principal in (arn, pusher):
            login = _dockgate(sample, "get-login-password", "--principal", principal, *data)
            assert login.returncode == 0, login.stderr
            with AdminClient(sample.admin, TOKEN) as admin:
                assert admin.verify_login_password(login.stdout.strip()) == principal
        listed = _dockgate(sample, "list-sessions", *data)
        assert [json.loads(line)["arn"] for line in listed.stdout.splitlines()] == [arn]
    finally:
        sample.stop()
