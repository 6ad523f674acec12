"""ProcessRuntime: the analysis questions, principals and token keys doors read through it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import dockgate_server.data
from dockgate_server.analysis import Access, PolicyProposal
from dockgate_server.frontends.runtime import ProcessRuntime
from dockgate_server.policy.model import PolicyKind
from dockgate_server.policy.parse import load_json
from dockgate_server.registry.token import new_token_key
from dockgate_server.store.bundle import bundle_to_fleet
from dockgate_server.store.port import open_store

A = "111122223333"
PUSHER = f"arn:aws:iam::{A}:user/ci/pusher"
READER = f"arn:aws:iam::{A}:user/reader"
APP = f"arn:aws:ecr:us-east-1:{A}:repository/team-a/app"


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    path = tmp_path / "store.sqlite3"
    with open_store(path) as store:
        sample = Path(dockgate_server.data.__file__).parent / "sample-bundle.json"
        store.import_fleet(bundle_to_fleet(load_json(sample.read_text())))
    return path


@pytest.fixture
def runtime(store_path: Path) -> Iterator[ProcessRuntime]:
    started = ProcessRuntime.start(store_path, None)
    try:
        yield started
    finally:
        started.stop()


def test_who_can_and_what_can_answer_at_the_runtime_s_revision(runtime: ProcessRuntime) -> None:
    revision, found = runtime.who_can("ecr:PutImage", APP)
    assert revision == runtime.freshness().revision
    assert PUSHER in {f.principal for f in found if f.access is Access.ALLOWED}
    assert READER not in {f.principal for f in found}
    _, can = runtime.what_can(PUSHER, APP)
    assert "ecr:PutImage" in {f.action for f in can if f.access is Access.ALLOWED}


def test_the_principals_are_the_store_s(runtime: ProcessRuntime) -> None:
    principals = runtime.principals()
    assert PUSHER in principals and READER in principals
    assert f"arn:aws:iam::{A}:root" in principals
    assert principals == sorted(principals)


def test_a_preview_is_set_against_the_stored_fleet_and_writes_nothing(
    runtime: ProcessRuntime,
) -> None:
    push = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "ecr:PutImage", "Resource": APP}],
    }
    before = runtime.freshness().revision
    revision, changes = runtime.preview(PolicyProposal(push, PolicyKind.IDENTITY, READER))
    assert revision == before == runtime.freshness().revision
    assert [(c.principal, c.action) for c in changes if c.new_access] == [(READER, "ecr:PutImage")]


def test_the_token_keyring_follows_a_rotation(runtime: ProcessRuntime, store_path: Path) -> None:
    with open_store(store_path) as store:
        store.rotate_token_key(new_token_key("ES256", time.time()), grace=60)
        revision = store.revision
    deadline = time.monotonic() + 10
    while runtime.freshness().revision < revision and time.monotonic() < deadline:
        time.sleep(0.02)
    first = runtime.token_keyring()
    with open_store(store_path) as store:
        store.rotate_token_key(new_token_key("ES256", time.time()), grace=60)
        revision = store.revision
    while runtime.freshness().revision < revision and time.monotonic() < deadline:
        time.sleep(0.02)
    second = runtime.token_keyring()
    assert first.certificates() != second.certificates()
    assert first.certificates().split("-----END CERTIFICATE-----")[0] in second.certificates()
