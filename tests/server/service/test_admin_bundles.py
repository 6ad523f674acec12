"""Bundles of any size through the admin port: streamed in pieces both ways, by the Python client
and by `dockgate import/export --server`; a refused import stores nothing; the one-message calls
still answer, and a client still talks to a server that has only them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest

import dockgate
from dockgate import AdminClient
from dockgate.v1 import admin_pb2, admin_pb2_grpc
from dockgate_server.cli import main
from dockgate_server.service import admin as admin_service
from dockgate_server.service.errors import ServiceError
from tests.server.service.conftest import RunningServer
from tests.server.store.fleet_bundles import READ_ACTIONS, large_bundle

ACCOUNT = "111122223333"
REPOSITORIES = 3000
SERVER_MESSAGE_LIMIT = 8 * 1024 * 1024
"""what the server accepts in one message (service/server.py); clients take 4 MiB by default"""


def _repository_policy(index: int) -> str:
    """About 3 KB: 3,000 of them make a bundle past every single-message limit."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": f"Pull{group}",
                    "Effect": "Allow",
                    "Principal": {
                        "AWS": [
                            f"arn:aws:iam::{100000000000 + group * 1000 + member:012d}:root"
                            for member in range(8)
                        ]
                    },
                    "Action": READ_ACTIONS,
                }
                for group in range(8)
            ],
        }
    )


def _fleet(bad_last: bool = False) -> dict[str, Any]:
    bundle = large_bundle(ACCOUNT, 40, REPOSITORIES)
    repositories = bundle["accounts"][ACCOUNT]["repositories"]
    for index, repository in enumerate(repositories):
        repository["policyText"] = _repository_policy(index)
    if bad_last:  # the very last policy of the bundle is invalid: nothing at all may be stored
        repositories[-1]["policyText"] = json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ecr:*"}]}
        )
    return bundle


@pytest.fixture(scope="module")
def big_text() -> str:
    text = json.dumps(_fleet())
    assert len(text.encode()) > SERVER_MESSAGE_LIMIT  # the case is not vacuous
    return text


@pytest.fixture
def admin(shared_server: RunningServer) -> Iterator[AdminClient]:
    with AdminClient(shared_server.admin, shared_server.token, timeout=120) as client:
        yield client


def _repository_count(bundle: dict[str, Any]) -> int:
    return sum(len(account["repositories"]) for account in bundle["accounts"].values())


def test_a_fleet_past_the_message_limits_goes_in_and_comes_out(
    admin: AdminClient, big_text: str
) -> None:
    revision = admin.import_bundle(big_text, replace=True)
    assert admin.revision() == revision
    exported = admin.export_bundle()
    assert _repository_count(exported) == REPOSITORIES
    stored = {r["repositoryArn"]: r for r in exported["accounts"][ACCOUNT]["repositories"]}
    last = json.loads(big_text)["accounts"][ACCOUNT]["repositories"][-1]
    assert json.loads(stored[last["repositoryArn"]]["policyText"]) == json.loads(last["policyText"])


def test_the_cli_imports_and_exports_a_big_fleet_and_prints_what_a_local_import_prints(
    shared_server: RunningServer,
    big_text: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DOCKGATE_ADMIN_TOKEN", shared_server.token)
    bundle = tmp_path / "big.json"
    bundle.write_text(big_text)
    assert main(["import", "--server", shared_server.admin, "--replace", str(bundle)]) == 0
    remote = json.loads(capsys.readouterr().out)
    assert main(["import", "--store", str(tmp_path / "local.db"), str(bundle)]) == 0
    local = json.loads(capsys.readouterr().out)
    assert list(remote) == list(local) == ["revision", "accounts", "users", "roles", "repositories"]
    assert {**remote, "revision": 0} == {**local, "revision": 0}
    assert remote["repositories"] == REPOSITORIES
    assert main(["export", "--server", shared_server.admin]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert _repository_count(exported) == REPOSITORIES


def test_a_refused_big_import_stores_nothing(admin: AdminClient, big_text: str) -> None:
    admin.import_bundle(big_text, replace=True)
    before = admin.revision()
    bad = json.dumps(_fleet(bad_last=True))
    with pytest.raises(dockgate.InvalidRequestError) as raised:
        admin.import_bundle(bad, replace=True)
    assert raised.value.reason == "INVALID_POLICY"
    assert admin.revision() == before
    with pytest.raises(dockgate.InvalidRequestError) as raised:
        admin.import_bundle(big_text[:-1], replace=True)  # cut short: not JSON
    assert raised.value.reason == "INVALID_BUNDLE"
    assert admin.revision() == before
    assert _repository_count(admin.export_bundle()) == REPOSITORIES


def test_a_streamed_import_without_the_token_is_unauthenticated(
    shared_server: RunningServer,
) -> None:
    with grpc.insecure_channel(shared_server.admin) as channel:
        stub = admin_pb2_grpc.PolicyAdminStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.ImportBundleChunks(iter([admin_pb2.BundleChunk(data=b"{}")]), timeout=10)
        assert raised.value.code() is grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as raised:
            list(stub.ExportBundleChunks(admin_pb2.ExportBundleRequest(), timeout=10))
        assert raised.value.code() is grpc.StatusCode.UNAUTHENTICATED


def test_the_one_message_calls_still_answer(shared_server: RunningServer) -> None:
    metadata = (("authorization", f"Bearer {shared_server.token}"),)
    small = json.dumps(large_bundle(ACCOUNT, 2, 3))
    with grpc.insecure_channel(shared_server.admin) as channel:
        stub = admin_pb2_grpc.PolicyAdminStub(channel)
        written = stub.ImportBundle(
            admin_pb2.ImportBundleRequest(bundle=small, replace=True), metadata=metadata
        )
        exported = stub.ExportBundle(admin_pb2.ExportBundleRequest(), metadata=metadata)
    assert exported.revision == written.revision
    assert _repository_count(json.loads(exported.bundle)) == 3


# -- the pieces, in process ----------------------------------------------------------------------


async def _pieces(*chunks: admin_pb2.BundleChunk) -> AsyncIterator[admin_pb2.BundleChunk]:
    for chunk in chunks:
        yield chunk


def test_pieces_join_across_a_split_character_and_replace_comes_from_the_first() -> None:
    data = json.dumps({"name": "café"}, ensure_ascii=False).encode()
    cut = data.index("é".encode()) + 1  # inside the two bytes of `é`
    text, replace = asyncio.run(
        admin_service._joined(
            _pieces(
                admin_pb2.BundleChunk(data=data[:cut], replace=True),
                admin_pb2.BundleChunk(data=data[cut:], replace=False),
            )
        )
    )
    assert json.loads(text) == {"name": "café"}
    assert replace is True


def test_an_import_past_the_bound_is_refused_as_soon_as_it_passes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(admin_service, "MAX_BUNDLE_BYTES", 10)
    read: list[int] = []

    async def endless() -> AsyncIterator[admin_pb2.BundleChunk]:
        for number in range(1000):
            read.append(number)
            yield admin_pb2.BundleChunk(data=b"123456")

    with pytest.raises(ServiceError) as raised:
        asyncio.run(admin_service._joined(endless()))
    assert raised.value.reason_name == "REQUEST_TOO_LARGE"
    assert read == [0, 1]
    with pytest.raises(ServiceError) as raised:
        asyncio.run(admin_service._joined(_pieces(admin_pb2.BundleChunk(data=b"\xff"))))
    assert raised.value.reason_name == "INVALID_BUNDLE"


def _old_server() -> tuple[grpc.Server, int]:
    """A server from before the streamed calls: only the one-message bundle calls."""
    stored: list[str] = [""]

    def import_bundle(
        request: admin_pb2.ImportBundleRequest, context: grpc.ServicerContext
    ) -> admin_pb2.WriteResponse:
        stored[0] = request.bundle
        return admin_pb2.WriteResponse(revision=7)

    def export_bundle(
        request: admin_pb2.ExportBundleRequest, context: grpc.ServicerContext
    ) -> admin_pb2.ExportBundleResponse:
        return admin_pb2.ExportBundleResponse(bundle=stored[0], revision=7)

    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
        "ImportBundle": grpc.unary_unary_rpc_method_handler(
            import_bundle,
            request_deserializer=admin_pb2.ImportBundleRequest.FromString,
            response_serializer=admin_pb2.WriteResponse.SerializeToString,
        ),
        "ExportBundle": grpc.unary_unary_rpc_method_handler(
            export_bundle,
            request_deserializer=admin_pb2.ExportBundleRequest.FromString,
            response_serializer=admin_pb2.ExportBundleResponse.SerializeToString,
        ),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("dockgate.v1.PolicyAdmin", handlers),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def test_the_client_falls_back_to_the_one_message_calls_of_an_older_server() -> None:
    server, port = _old_server()
    try:
        with AdminClient(f"127.0.0.1:{port}", "token") as client:
            small = large_bundle(ACCOUNT, 1, 1)
            assert client.import_bundle(small) == 7
            assert client.export_bundle() == small
    finally:
        server.stop(grace=None)
