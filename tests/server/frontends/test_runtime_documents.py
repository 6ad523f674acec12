"""ProcessRuntime.policy_document: the text of every kind of policy a decision's reason names."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

import dockgate_server.data
from dockgate_server.analysis import ProposalError
from dockgate_server.frontends.runtime import ProcessRuntime
from dockgate_server.policy.parse import load_json
from dockgate_server.store.bundle import bundle_to_fleet
from dockgate_server.store.model import Group, Session
from dockgate_server.store.port import open_store

A = "111122223333"
PUSHER = f"arn:aws:iam::{A}:user/ci/pusher"
APP = f"arn:aws:ecr:us-east-1:{A}:repository/team-a/app"
DENY_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}],
}
SESSION = f"arn:aws:sts::{A}:assumed-role/deploy/build-7"


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessRuntime]:
    path = tmp_path_factory.mktemp("documents") / "store.sqlite3"
    with open_store(path) as store:
        sample = Path(dockgate_server.data.__file__).parent / "sample-bundle.json"
        store.import_fleet(bundle_to_fleet(load_json(sample.read_text())))
        store.put_group(Group(A, "ops", inline={"no-deletes": DENY_ALL}))
        store.put_session(
            Session(
                arn=SESSION,
                session_id="AROAEXAMPLE:build-7",
                base=f"role/{A}/deploy",
                caller=PUSHER,
                issued_at=0.0,
                expires_at=4_000_000_000.0,
                policy=DENY_ALL,
            )
        )
    started = ProcessRuntime.start(path, None)
    try:
        yield started
    finally:
        started.stop()


@pytest.mark.parametrize(
    ("policy", "first_sid"),
    [
        (f"{PUSHER}#push-team-a", "Login"),
        (f"arn:aws:iam::{A}:policy/registry-read", "Login"),  # the default version, v2
        (f"{APP}#policy", "PartnerPull"),
        ("ou-ab12-34cd5678#scp[0]", "AllowAll"),
        ("root#scp[0]", None),
        (f"arn:aws:iam::{A}:group/ops#no-deletes", None),
        (f"session policy of `{SESSION}`", None),
    ],
)
def test_each_name_a_decision_gives_reads_its_document(
    runtime: ProcessRuntime, policy: str, first_sid: str | None
) -> None:
    revision, document = runtime.policy_document(policy)
    assert revision == runtime.freshness().revision
    assert document is not None
    assert document["Statement"][0].get("Sid") == first_sid


def test_the_trust_policy_of_a_role(runtime: ProcessRuntime) -> None:
    _, document = runtime.policy_document(f"arn:aws:iam::{A}:role/deploy#trust")
    assert document is not None
    assert document["Statement"][0]["Principal"] == {"AWS": f"arn:aws:iam::{A}:root"}


@pytest.mark.parametrize(
    "policy",
    [
        f"{PUSHER}#no-such-policy",
        f"arn:aws:iam::{A}:policy/ghost",
        "ou-ab12-34cd5678#scp[7]",
        "ou-nope#rcp[0]",
        "session policy of `arn:aws:sts::1:assumed-role/x/y`",
        "identityPolicies[0]",
    ],
)
def test_a_name_the_store_does_not_hold_has_no_document(
    runtime: ProcessRuntime, policy: str
) -> None:
    assert runtime.policy_document(policy)[1] is None


def test_documents_are_read_from_any_thread(runtime: ProcessRuntime) -> None:
    """Doors ask from `asyncio.to_thread`: a SQLite connection must not follow them around."""

    async def ask() -> list[object]:
        reads = [
            asyncio.to_thread(runtime.policy_document, f"{APP}#policy"),
            asyncio.to_thread(runtime.token_keyring),
            asyncio.to_thread(runtime.policy_document, f"{PUSHER}#push-team-a"),
        ]
        return list(await asyncio.gather(*reads))

    for _ in range(3):
        assert len(asyncio.run(ask())) == 3


def test_a_bundle_that_is_not_one_is_a_proposal_error(runtime: ProcessRuntime) -> None:
    with pytest.raises(ProposalError):
        runtime.bundle_proposal({"format": "nope"})
