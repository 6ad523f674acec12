"""`dockgate who-can`, `what-can` and `preview`: access analysis, one JSON line a result.

Each command reads the store (it must exist: none is created) and answers from a snapshot of it,
or asks a running server (`--server HOST:PORT`, `dockgate.v1.Analyzer`) and prints the same lines;
`preview` writes nothing. Exit codes: 0 answered (also when nothing is found); 1 `preview
--fail-on-new-access` found new access; 2 a mistake in what was asked, or a server that refused or
could not be reached (one `dockgate: ...` line on standard error). Where the answers come from is
a `Source`: the store, or the server.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from dockgate_server.analysis import (
    BundleProposal,
    PolicyProposal,
    Proposal,
    ProposalError,
    preview,
    what_can,
    who_can,
)
from dockgate_server.channels import (
    ChannelFactory,
    add_tls_arguments,
    channel_factory,
    tls_from_arguments,
)
from dockgate_server.engine.build import build_snapshot
from dockgate_server.engine.request import RequestError
from dockgate_server.engine.snapshot import Snapshot
from dockgate_server.policy.findings import PolicyError
from dockgate_server.policy.model import PolicyKind
from dockgate_server.policy.parse import load_json
from dockgate_server.remote import RemoteError, remote_preview, remote_what_can, remote_who_can
from dockgate_server.store.bundle import bundle_to_fleet
from dockgate_server.store.model import Fleet
from dockgate_server.store.port import MissingStoreError, StoreError, open_store

__all__ = ["add_analysis_commands"]

_KINDS = {
    "identity": PolicyKind.IDENTITY,
    "repository": PolicyKind.REPOSITORY,
    "boundary": PolicyKind.BOUNDARY,
    "scp": PolicyKind.SCP,
    "rcp": PolicyKind.RCP,
}

StorePath = Callable[[argparse.Namespace], str]


class _UsageError(Exception):
    """What was asked cannot be answered: one `dockgate: ...` line, exit 2."""


def add_analysis_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], store_path: StorePath
) -> None:
    """Register the three commands; `store_path` reads `--store` (or its default) from the
    parsed arguments."""
    store_help = (
        "the store: a SQLite path or `sqlite:///PATH`, or `postgresql://USER@HOST:PORT/DB` "
        "(default: $DOCKGATE_STORE or the data directory's store); it must exist"
    )

    def where(parser: argparse.ArgumentParser) -> None:
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--store", default=None, help=store_help)
        source.add_argument(
            "--server",
            metavar="HOST:PORT",
            help="ask a running server's decision port instead of reading a store",
        )
        add_tls_arguments(parser)
        parser.set_defaults(addresses=(("server", "--server", False),))

    who = commands.add_parser(
        "who-can",
        help="list who may perform an action on a repository",
        description="One JSON line for each principal of the store allowed (`Allowed`) or "
        "allowed only in some request contexts (`Conditional`, with the statements whose "
        "conditions decide and an example context), and for each grant of the repository "
        "policy to principals the store does not list (`*`, an account, an unknown ARN: "
        '`"decided": false`). Exits 0, or 2 on a usage error.',
    )
    where(who)
    who.add_argument("--action", required=True, help="`service:Action`, e.g. ecr:PutImage")
    who.add_argument(
        "--repository",
        required=True,
        metavar="NAME_OR_ARN",
        help="a repository's ARN, its name when one repository of the store has it, or * for "
        "actions without a repository",
    )
    _denied_argument(who)
    who.set_defaults(run=_run(store_path, _who_can))

    what = commands.add_parser(
        "what-can",
        help="list what a principal may do, on every repository or on one",
        description="One JSON line for each (repository, action) of ECR's actions that the "
        "principal is allowed, always or in some request contexts; `*` for the actions "
        "without a repository. Exits 0, or 2 on a usage error.",
    )
    where(what)
    what.add_argument("--principal", required=True, help="the principal's ARN or service name")
    what.add_argument(
        "--repository", metavar="NAME_OR_ARN", help="only this repository (its ARN or name)"
    )
    _denied_argument(what)
    what.set_defaults(run=_run(store_path, _what_can))

    change = commands.add_parser(
        "preview",
        help="list every access a proposed bundle or policy would change, writing nothing",
        description="One JSON line for each (principal, action, repository) whose access would "
        "change: `before`, `after`, and `newAccess` (not allowed before, allowed or "
        "conditional after; or conditional before, allowed after). Exits 0; 1 under "
        "--fail-on-new-access when any change is new access; 2 on a usage error.",
    )
    where(change)
    proposed = change.add_mutually_exclusive_group(required=True)
    proposed.add_argument(
        "--bundle", metavar="FILE", help="a bundle, merged as `dockgate import` would"
    )
    proposed.add_argument("--policy", metavar="FILE", help="one policy document (with --kind)")
    change.add_argument("--kind", choices=sorted(_KINDS), help="what --policy is")
    change.add_argument(
        "--attach-to",
        metavar="TARGET",
        help="where --policy goes: a user, role or group ARN or managed policy ARN (identity); "
        "a user or role ARN or managed policy ARN (boundary); a repository ARN or name "
        "(repository); an organization root, unit or account ID (scp, rcp)",
    )
    change.add_argument(
        "--fail-on-new-access",
        action="store_true",
        help="exit 1 when the change allows anything that was not allowed",
    )
    change.set_defaults(run=_run(store_path, _preview))


def _denied_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--include-denied",
        action="store_true",
        help="also list the explicit denials, with the statements that deny",
    )


@dataclass(frozen=True, slots=True)
class Given:
    """A proposal as given: a bundle, or a policy with its kind and target (and the files)."""

    file: str
    document: Any
    kind: str | None = None
    target: str | None = None

    @property
    def is_bundle(self) -> bool:
        return self.kind is None


class Source(Protocol):
    """Where the answers come from."""

    def repository(self, given: str, option: str) -> str: ...

    def who_can(
        self, action: str, repository: str, include_denied: bool
    ) -> list[dict[str, object]]: ...

    def what_can(
        self, principal: str, repository: str | None, include_denied: bool
    ) -> list[dict[str, object]]: ...

    def preview(self, given: Given) -> list[dict[str, object]]: ...


@dataclass(frozen=True, slots=True)
class StoreSource:
    """The answers of a snapshot of the store, compiled in this process."""

    snapshot: Snapshot
    fleet: Fleet

    def repository(self, given: str, option: str) -> str:
        return _resolve_repository(self.snapshot, given, option)

    def who_can(
        self, action: str, repository: str, include_denied: bool
    ) -> list[dict[str, object]]:
        found = who_can(self.snapshot, action, repository, include_denied=include_denied)
        return [finding.to_json() for finding in found]

    def what_can(
        self, principal: str, repository: str | None, include_denied: bool
    ) -> list[dict[str, object]]:
        found = what_can(self.snapshot, principal, repository, include_denied=include_denied)
        return [finding.to_json() for finding in found]

    def preview(self, given: Given) -> list[dict[str, object]]:
        proposal = _proposal(given)
        try:
            changes = preview(self.snapshot, self.fleet, proposal)
        except PolicyError as problem:
            raise _UsageError(f"--policy `{given.file}`: {problem}") from None
        except ProposalError as problem:
            option = "--bundle" if given.is_bundle else "--attach-to"
            raise _UsageError(f"{option}: {problem}") from None
        return [change.to_json() for change in changes]


@dataclass(frozen=True, slots=True)
class ServerSource:
    """The answers of a running server (`dockgate.v1.Analyzer` on its decision port), printed as
    a store's are; the server resolves repository names against its own store."""

    address: str
    connect: ChannelFactory

    def repository(self, given: str, option: str) -> str:
        return given

    def who_can(
        self, action: str, repository: str, include_denied: bool
    ) -> list[dict[str, object]]:
        return remote_who_can(
            self.address, action, repository, include_denied, connect=self.connect
        )

    def what_can(
        self, principal: str, repository: str | None, include_denied: bool
    ) -> list[dict[str, object]]:
        return remote_what_can(
            self.address, principal, repository, include_denied, connect=self.connect
        )

    def preview(self, given: Given) -> list[dict[str, object]]:
        text = json.dumps(given.document)
        if given.is_bundle:
            return remote_preview(self.address, bundle=text, connect=self.connect)
        assert given.kind is not None and given.target is not None
        policy = (text, given.kind, given.target)
        return remote_preview(self.address, policy=policy, connect=self.connect)


@contextmanager
def _store_source(path: str) -> Iterator[StoreSource]:
    try:
        store = open_store(path, create=False)
    except MissingStoreError as problem:
        raise _UsageError(
            f"{problem} (create one with `dockgate import BUNDLE --store {path}` or "
            "`dockgate serve`)"
        ) from None
    with store, store.reading() as revision:
        fleet = store.load_fleet()
        snapshot = build_snapshot(fleet, store.load_credentials(), revision)
    yield StoreSource(snapshot, fleet)


Command = Callable[[argparse.Namespace, Source], int]


def _run(store_path: StorePath, command: Command) -> Callable[[argparse.Namespace], int]:
    def run(arguments: argparse.Namespace) -> int:
        try:
            _check_arguments(arguments)
            if arguments.server:
                source = _server_source(arguments)
                try:
                    return command(arguments, source)
                except RemoteError as problem:
                    raise _UsageError(_remote_message(problem, arguments)) from None
            with _store_source(store_path(arguments)) as local:
                return command(arguments, local)
        except _UsageError as problem:
            return _fail(str(problem))
        except StoreError as problem:
            return _fail(str(problem))
        except RequestError as problem:
            return _fail(f"invalid request: {problem}")

    return run


def _server_source(arguments: argparse.Namespace) -> ServerSource:
    try:
        tls = tls_from_arguments(arguments)
    except ValueError as problem:
        raise _UsageError(str(problem)) from None
    return ServerSource(arguments.server, channel_factory(tls))


_REQUEST_FIELDS = frozenset({"action", "principal", "request"})


def _remote_message(problem: RemoteError, arguments: argparse.Namespace) -> str:
    """A refusal said as the same mistake against a store is; anything else as the server
    said it, with its status."""
    field = problem.field
    bare = problem.details.removeprefix(f"`{field}`: ") if field else problem.details
    options = {
        "repository": "--repository",
        "policy.target": "--attach-to",
        "policy.document": f"--policy `{getattr(arguments, 'policy', None)}`",
        "bundle": f"--bundle `{getattr(arguments, 'bundle', None)}`",
    }
    if field in _REQUEST_FIELDS and problem.reason.startswith("INVALID_"):
        return f"invalid request: {bare}"
    option = options.get(field)
    if option is None:
        return str(problem)
    return f"{option} {bare}" if bare.startswith("`") else f"{option}: {bare}"


def _check_arguments(arguments: argparse.Namespace) -> None:
    """What argparse cannot check, before the store is opened."""
    if getattr(arguments, "policy", None) is not None:
        if arguments.kind is None or arguments.attach_to is None:
            raise _UsageError("--policy needs --kind and --attach-to")
    elif getattr(arguments, "bundle", None) is not None and (
        arguments.kind is not None or arguments.attach_to is not None
    ):
        raise _UsageError("--kind and --attach-to go with --policy, not --bundle")


def _who_can(arguments: argparse.Namespace, source: Source) -> int:
    repository = source.repository(arguments.repository, "--repository")
    _print(source.who_can(arguments.action, repository, arguments.include_denied))
    return 0


def _what_can(arguments: argparse.Namespace, source: Source) -> int:
    repository = None
    if arguments.repository is not None:
        repository = source.repository(arguments.repository, "--repository")
        if repository == "*":
            raise _UsageError("--repository `*`: give a repository's ARN or name")
    _print(source.what_can(arguments.principal, repository, arguments.include_denied))
    return 0


def _preview(arguments: argparse.Namespace, source: Source) -> int:
    changes = source.preview(_given(arguments, source))
    _print(changes)
    new = sum(1 for change in changes if change["newAccess"])
    return 1 if arguments.fail_on_new_access and new else 0


def _given(arguments: argparse.Namespace, source: Source) -> Given:
    if arguments.bundle is not None:
        return Given(arguments.bundle, _read_json(arguments.bundle, "--bundle"))
    target = arguments.attach_to
    if _KINDS[arguments.kind] is PolicyKind.REPOSITORY:
        target = source.repository(target, "--attach-to")
    document = _read_json(arguments.policy, "--policy")
    if not isinstance(document, dict):
        raise _UsageError(f"--policy `{arguments.policy}`: a policy is a JSON object")
    return Given(arguments.policy, document, arguments.kind, target)


def _proposal(given: Given) -> Proposal:
    if given.is_bundle:
        try:
            return BundleProposal(bundle_to_fleet(given.document))
        except StoreError as problem:  # a bundle not in the format
            raise _UsageError(f"--bundle `{given.file}`: {problem}") from None
    assert given.kind is not None and given.target is not None
    return PolicyProposal(given.document, _KINDS[given.kind], given.target)


def _read_json(name: str, option: str) -> object:
    try:
        text = Path(name).read_text(encoding="utf-8")
    except OSError as problem:
        raise _UsageError(
            f"{option} `{name}`: cannot read: {problem.strerror or problem}"
        ) from None
    try:
        return load_json(text)
    except ValueError as problem:
        raise _UsageError(f"{option} `{name}`: not JSON: {problem}") from None


def _resolve_repository(snapshot: Snapshot, given: str, option: str) -> str:
    """An ARN (or `*`) as given; a name, the one repository of the store that has it."""
    if given == "*" or given.startswith("arn:"):
        return given
    found = sorted(
        arn for arn in snapshot.repositories if arn.split(":", 5)[-1] == f"repository/{given}"
    )
    if not found:
        raise _UsageError(f"{option} `{given}`: no repository of the store has this name")
    if len(found) > 1:
        listed = ", ".join(f"`{arn}`" for arn in found)
        raise _UsageError(
            f"{option} `{given}`: names {len(found)} repositories ({listed}): give its ARN"
        )
    return found[0]


def _print(results: list[dict[str, object]]) -> None:
    for result in results:
        print(json.dumps(result, ensure_ascii=False))


def _fail(message: str) -> int:
    print(f"dockgate: {message}", file=sys.stderr)
    return 2
