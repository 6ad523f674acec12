"""The admin port: every PolicyAdmin call needs the token, health stays open, the decision port
cannot write, and with the token writes raise the revision and reads give back what was written."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2

import dockgate
from dockgate import AdminClient, Client, Outcome
from dockgate._errors import from_rpc_error
from dockgate.v1 import admin_pb2
from tests.server.service.conftest import RunningServer, start_server

ACCOUNT = "111122223333"
REPOSITORY_PREFIX = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/"
ADMIN_METHODS = [m.name for m in admin_pb2.DESCRIPTOR.services_by_name["PolicyAdmin"].methods]
READER = f"arn:aws:iam::{ACCOUNT}:user/reader"

PULL_POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "Pull",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "ecr:BatchGetImage",
        }
    ],
}


@pytest.fixture
def admin_channel(shared_server: RunningServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(shared_server.admin) as channel:
        yield channel


@pytest.fixture
def decision_channel(shared_server: RunningServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(shared_server.decision) as channel:
        yield channel


@pytest.fixture
def admin(shared_server: RunningServer) -> Iterator[AdminClient]:
    with AdminClient(shared_server.admin, shared_server.token) as client:
        yield client


def _raw_call(
    channel: grpc.Channel,
    service: str,
    method: str,
    payload: bytes = b"",
    metadata: tuple[tuple[str, str], ...] = (),
) -> dockgate.DockgateError:
    """Call `service/method` with raw bytes; the failure as the client reports it."""
    call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(f"/{service}/{method}")
    try:
        call(payload, timeout=5, metadata=metadata)
    except grpc.RpcError as error:
        return from_rpc_error(error)
    raise AssertionError(f"{service}/{method} succeeded")


# -- the token -----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ADMIN_METHODS)
def test_every_admin_call_without_token_is_unauthenticated(
    admin_channel: grpc.Channel, method: str
) -> None:
    failure = _raw_call(admin_channel, "dockgate.v1.PolicyAdmin", method)
    assert isinstance(failure, dockgate.UnauthenticatedError)
    assert failure.code is grpc.StatusCode.UNAUTHENTICATED
    assert failure.reason == "MISSING_TOKEN"


@pytest.mark.parametrize(
    "authorization",
    ["Bearer wrong-token", "test-admin-token", "Basic test-admin-token", "Bearer ", ""],
)
def test_a_wrong_token_is_invalid(admin_channel: grpc.Channel, authorization: str) -> None:
    failure = _raw_call(
        admin_channel,
        "dockgate.v1.PolicyAdmin",
        "GetRevision",
        metadata=(("authorization", authorization),),
    )
    assert isinstance(failure, dockgate.UnauthenticatedError)
    assert failure.reason == "INVALID_TOKEN"


def test_the_admin_client_with_a_wrong_token_raises_and_writes_nothing(
    shared_server: RunningServer, admin: AdminClient
) -> None:
    before = admin.revision()
    arn = REPOSITORY_PREFIX + "unauthenticated/write"
    with AdminClient(shared_server.admin, "not-the-token") as intruder:
        calls = [
            intruder.revision,
            lambda: intruder.put_repository(arn),
            lambda: intruder.put_user(ACCOUNT, "intruder"),
            lambda: intruder.import_bundle({"format": "dockgate-bundle/1", "accounts": {}}),
            intruder.export_bundle,
        ]
        for call in calls:
            with pytest.raises(dockgate.UnauthenticatedError) as raised:
                call()
            assert raised.value.reason == "INVALID_TOKEN"
            assert not isinstance(raised.value, grpc.RpcError)
    assert admin.revision() == before
    failure = _missing_repository(admin, arn)
    assert isinstance(failure, dockgate.NotFoundError)


def test_a_write_without_token_stores_nothing(
    admin_channel: grpc.Channel, admin: AdminClient
) -> None:
    before = admin.revision()
    arn = REPOSITORY_PREFIX + "no-token/write"
    payload = admin_pb2.Repository(arn=arn).SerializeToString()
    failure = _raw_call(admin_channel, "dockgate.v1.PolicyAdmin", "PutRepository", payload)
    assert failure.reason == "MISSING_TOKEN"
    assert admin.revision() == before
    assert isinstance(_missing_repository(admin, arn), dockgate.NotFoundError)


# -- open doors: health and reflection ---------------------------------------------------------


@pytest.mark.parametrize(
    ("port", "service"),
    [("decision", "dockgate.v1.Authorizer"), ("admin", "dockgate.v1.PolicyAdmin")],
)
def test_health_answers_serving_without_token(
    shared_server: RunningServer, port: str, service: str
) -> None:
    address = shared_server.decision if port == "decision" else shared_server.admin
    with grpc.insecure_channel(address) as channel:
        check: grpc.UnaryUnaryMultiCallable[
            health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse
        ] = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        for name in ("", service):
            answer = check(health_pb2.HealthCheckRequest(service=name), timeout=5)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING, name


# -- the decision port cannot write ------------------------------------------------------------


@pytest.mark.parametrize("method", ADMIN_METHODS)
def test_the_decision_port_does_not_serve_policy_admin(
    decision_channel: grpc.Channel, shared_server: RunningServer, method: str
) -> None:
    """Even with the right token: the service simply is not there."""
    failure = _raw_call(
        decision_channel,
        "dockgate.v1.PolicyAdmin",
        method,
        metadata=(("authorization", f"Bearer {shared_server.token}"),),
    )
    assert failure.code is grpc.StatusCode.UNIMPLEMENTED


def test_the_decision_port_offers_only_reads(decision_channel: grpc.Channel) -> None:
    reflection: grpc.StreamStreamMultiCallable[
        reflection_pb2.ServerReflectionRequest, reflection_pb2.ServerReflectionResponse
    ] = decision_channel.stream_stream(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    asked = iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    answers = list(reflection(asked, timeout=5))
    listed = {s.name for a in answers for s in a.list_services_response.service}
    assert listed == {
        "dockgate.v1.Analyzer",
        "dockgate.v1.Authorizer",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    }


def test_a_write_attempt_on_the_decision_port_changes_nothing(
    decision_channel: grpc.Channel, shared_server: RunningServer, admin: AdminClient
) -> None:
    before = admin.revision()
    arn = REPOSITORY_PREFIX + "decision-port/write"
    bundle = {
        "format": "dockgate-bundle/1",
        "accounts": {ACCOUNT: {"repositories": [{"repositoryArn": arn}]}},
    }
    token = (("authorization", f"Bearer {shared_server.token}"),)
    for method, payload in (
        ("PutRepository", admin_pb2.Repository(arn=arn).SerializeToString()),
        (
            "ImportBundle",
            admin_pb2.ImportBundleRequest(bundle=json.dumps(bundle)).SerializeToString(),
        ),
        ("DeleteUser", admin_pb2.EntityRef(account=ACCOUNT, name="reader").SerializeToString()),
    ):
        failure = _raw_call(decision_channel, "dockgate.v1.PolicyAdmin", method, payload, token)
        assert failure.code is grpc.StatusCode.UNIMPLEMENTED
    assert admin.revision() == before
    assert isinstance(_missing_repository(admin, arn), dockgate.NotFoundError)
    with Client(shared_server.decision) as client:
        decision = client.authorize(READER, "ecr:BatchGetImage", REPOSITORY_PREFIX + "team-a/app")
    assert decision.outcome is Outcome.ALLOWED  # the reader was not deleted


# -- with the token: writes and reads ----------------------------------------------------------


def test_writes_return_increasing_revisions(admin: AdminClient) -> None:
    arn = REPOSITORY_PREFIX + "revisions/app"
    role_trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    start = admin.revision()
    revisions = [
        admin.put_repository(arn, tags={"env": "test"}),
        admin.set_repository_policy(arn, PULL_POLICY),
        admin.delete_repository_policy(arn),
        admin.put_user(ACCOUNT, "revision-user", groups=("readers",)),
        admin.put_role(ACCOUNT, "revision-role", trust_policy=role_trust),
        admin.delete_role(ACCOUNT, "revision-role"),
        admin.delete_user(ACCOUNT, "revision-user"),
        admin.import_bundle(
            {
                "format": "dockgate-bundle/1",
                "accounts": {ACCOUNT: {"repositories": [{"repositoryArn": arn + "-2"}]}},
            }
        ),
    ]
    assert revisions[0] > start
    assert revisions == sorted(set(revisions)), revisions
    assert admin.revision() == revisions[-1]


def test_reads_return_what_was_written(admin: AdminClient) -> None:
    arn = REPOSITORY_PREFIX + "round-trip/app"
    inline = {
        "push": {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "ecr:PutImage", "Resource": arn},
            ],
        }
    }
    admin.put_repository(arn, tags={"env": "prod", "team": "a"}, policy=PULL_POLICY)
    admin.put_user(
        ACCOUNT,
        "round-trip",
        path="/ci/",
        tags={"team": "a"},
        groups=("readers",),
        inline_policies=inline,
        attached_policies=(f"arn:aws:iam::{ACCOUNT}:policy/registry-read",),
    )
    repository = admin.stub.GetRepository(
        admin_pb2.ArnRef(arn=arn), metadata=admin.metadata, timeout=5
    )
    assert repository.arn == arn
    assert dict(repository.tags) == {"env": "prod", "team": "a"}
    assert repository.HasField("policy")
    assert json.loads(repository.policy) == PULL_POLICY

    user = admin.stub.GetUser(
        admin_pb2.EntityRef(account=ACCOUNT, name="round-trip"), metadata=admin.metadata, timeout=5
    )
    assert user.arn == f"arn:aws:iam::{ACCOUNT}:user/ci/round-trip"
    assert user.path == "/ci/"
    assert dict(user.tags) == {"team": "a"}
    assert list(user.groups) == ["readers"]
    assert list(user.attached_policies) == [f"arn:aws:iam::{ACCOUNT}:policy/registry-read"]
    assert {p.name: json.loads(p.document) for p in user.inline_policies} == inline

    listed = admin.stub.ListRepositories(
        admin_pb2.ListRequest(account=ACCOUNT), metadata=admin.metadata, timeout=5
    )
    assert arn in {r.arn for r in listed.repositories}
    exported = admin.export_bundle()
    stored = exported["accounts"][ACCOUNT]["repositories"]
    assert arn in {r["repositoryArn"] for r in stored}


def test_an_invalid_policy_names_its_pointer_and_stores_nothing(admin: AdminClient) -> None:
    arn = REPOSITORY_PREFIX + "invalid-policy/app"
    before = admin.revision()
    bad = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Permit", "Principal": "*", "Action": "ecr:BatchGetImage"}],
    }
    with pytest.raises(dockgate.InvalidRequestError) as raised:
        admin.put_repository(arn, policy=bad)
    assert raised.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.reason == "INVALID_POLICY"
    assert raised.value.metadata["pointer"] == "/Statement/0/Effect"
    assert arn in raised.value.metadata["policy"]

    operator = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "ecr:*",
                "Resource": "*",
                "Condition": {"StringEqualz": {"aws:username": "x"}},
            }
        ],
    }
    with pytest.raises(dockgate.InvalidRequestError) as raised:
        admin.put_user(ACCOUNT, "invalid-policy", inline_policies={"broken": operator})
    assert raised.value.reason == "INVALID_POLICY"
    assert raised.value.metadata["pointer"] == "/Statement/0/Condition/StringEqualz"
    assert "broken" in raised.value.metadata["policy"]
    assert admin.revision() == before

    findings = admin.validate_policy(bad, kind="repository")
    assert [(f.severity, f.pointer) for f in findings] == [("error", "/Statement/0/Effect")]
    assert admin.revision() == before


NOT_JSON = "{not json"


@pytest.mark.parametrize(
    "case",
    [
        (
            "SetRepositoryPolicy",
            admin_pb2.SetRepositoryPolicyRequest(
                arn=REPOSITORY_PREFIX + "team-a/app", policy=NOT_JSON
            ),
            "INVALID_POLICY",
            "policy",
        ),
        (
            "PutRepository",
            admin_pb2.Repository(arn=REPOSITORY_PREFIX + "not-json/app", policy=NOT_JSON),
            "INVALID_POLICY",
            "policy",
        ),
        (
            "PutUser",
            admin_pb2.User(
                account=ACCOUNT,
                name="not-json",
                inline_policies=[admin_pb2.InlinePolicy(name="broken", document=NOT_JSON)],
            ),
            "INVALID_POLICY",
            "inline_policies/broken",
        ),
        (
            "PutRole",
            admin_pb2.Role(account=ACCOUNT, name="not-json", trust_policy=NOT_JSON),
            "INVALID_POLICY",
            "trust_policy",
        ),
        (
            "ImportBundle",
            admin_pb2.ImportBundleRequest(bundle=NOT_JSON),
            "INVALID_BUNDLE",
            "bundle",
        ),
    ],
)
def test_a_document_that_is_not_json_names_the_field(
    admin_channel: grpc.Channel, admin: AdminClient, case: tuple[str, Message, str, str]
) -> None:
    method, request_message, reason, field = case
    before = admin.revision()
    failure = _raw_call(
        admin_channel,
        "dockgate.v1.PolicyAdmin",
        method,
        request_message.SerializeToString(),
        admin.metadata,
    )
    assert isinstance(failure, dockgate.InvalidRequestError), failure
    assert failure.reason == reason
    assert failure.field == field
    assert admin.revision() == before


def _missing_repository(admin: AdminClient, arn: str) -> dockgate.DockgateError:
    try:
        admin.stub.GetRepository(admin_pb2.ArnRef(arn=arn), metadata=admin.metadata, timeout=5)
    except grpc.RpcError as error:
        return from_rpc_error(error)
    raise AssertionError(f"repository `{arn}` exists")


def test_a_missing_entity_is_not_found(admin: AdminClient) -> None:
    missing = _missing_repository(admin, REPOSITORY_PREFIX + "never/stored")
    assert isinstance(missing, dockgate.NotFoundError)
    assert missing.reason == "NOT_FOUND"
    for read in (
        lambda: admin.stub.GetUser(
            admin_pb2.EntityRef(account=ACCOUNT, name="nobody"), metadata=admin.metadata
        ),
        lambda: admin.stub.GetRole(
            admin_pb2.EntityRef(account=ACCOUNT, name="nobody"), metadata=admin.metadata
        ),
        lambda: admin.stub.GetManagedPolicy(
            admin_pb2.ArnRef(arn=f"arn:aws:iam::{ACCOUNT}:policy/none"), metadata=admin.metadata
        ),
    ):
        with pytest.raises(grpc.RpcError) as raised:
            read()
        assert isinstance(from_rpc_error(raised.value), dockgate.NotFoundError)
    with pytest.raises(dockgate.NotFoundError):
        admin.delete_user(ACCOUNT, "nobody")
    with pytest.raises(dockgate.NotFoundError):
        admin.delete_repository_policy(REPOSITORY_PREFIX + "never/stored")


def test_a_missing_reference_is_a_refused_write_not_a_missing_entity(admin: AdminClient) -> None:
    """The user being written is not what is missing: its group is."""
    before = admin.revision()
    with pytest.raises(dockgate.WriteRefusedError) as raised:
        admin.put_user(ACCOUNT, "orphan", groups=("no-such-group",))
    assert raised.value.code is grpc.StatusCode.FAILED_PRECONDITION
    assert raised.value.reason == "WRITE_REFUSED"
    with pytest.raises(dockgate.WriteRefusedError):
        admin.put_user(
            ACCOUNT, "orphan", attached_policies=(f"arn:aws:iam::{ACCOUNT}:policy/none",)
        )
    assert admin.revision() == before


# -- the generated token -----------------------------------------------------------------------


def test_the_token_is_generated_owner_only_when_the_variable_is_unset(tmp_path: Path) -> None:
    running = start_server(tmp_path, env={"DOCKGATE_ADMIN_TOKEN": None})
    try:
        token_file = tmp_path / "admin-token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text(encoding="utf-8").strip()
        assert len(token) >= 32
        assert token != running.token
        with AdminClient(running.admin, token) as admin:
            assert admin.revision() >= 1
        with AdminClient(running.admin, running.token) as stale:
            with pytest.raises(dockgate.UnauthenticatedError) as raised:
                stale.revision()
            assert raised.value.reason == "INVALID_TOKEN"
    finally:
        assert running.stop() == 0
