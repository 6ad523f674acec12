"""`dockgate who-can`, `what-can` and `preview`: access analysis, one JSON line a result.

Each command reads the store (it must exist: none is created) and answers from a snapshot of it;
`preview` writes nothing. Exit codes: 0 answered (also when nothing is found); 1 `preview
--fail-on-new-access` found new access; 2 a mistake in what was asked (one `dockgate: ...` line
on standard error). Where the answers come from is a `Source`: the store here; a running server
can stand behind the same commands.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from dockgate_server.analysis import (
    BundleProposal,
    PolicyProposal,
    Proposal,
    ProposalError,
    preview,
    what_can,
    who_can,
)
from dockgate_server.engine.build import build_snapshot
from dockgate_server.engine.request import RequestError
from dockgate_server.engine.snapshot import Snapshot
from dockgate_server.policy.findings import PolicyError
from dockgate_server.policy.model import PolicyKind
from dockgate_server.policy.parse import load_json
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
    who = commands.add_parser(
        "who-can",
        help="list who may perform an action on a repository",
        description="One JSON line for each principal of the store allowed (`Allowed`) or "
        "allowed only in some request contexts (`Conditional`, with the statements whose "
        "conditions decide and an example context), and for each grant of the repository "
        "policy to principals the store does not list (`*`, an account, an unknown ARN: "
        '`"decided": false`). Exits 0, or 2 on a usage error.',
    )
    who.add_argument("--store", default=None, help=store_help)
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
    what.add_argument("--store", default=None, help=store_help)
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
    change.add_argument("--store", default=None, help=store_help)
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


class Source(Protocol):
    """Where the answers come from."""

    def repository(self, given: str, option: str) -> str: ...

    def who_can(
        self, action: str, repository: str, include_denied: bool
    ) -> list[dict[str, object]]: ...

    def what_can(
        self, principal: str, repository: str | None, include_denied: bool
    ) -> list[dict[str, object]]: ...

    def preview(self, proposal: Proposal) -> list[dict[str, object]]: ...


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

    def preview(self, proposal: Proposal) -> list[dict[str, object]]:
        return [change.to_json() for change in preview(self.snapshot, self.fleet, proposal)]


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
            with _store_source(store_path(arguments)) as source:
                return command(arguments, source)
        except _UsageError as problem:
            return _fail(str(problem))
        except StoreError as problem:
            return _fail(str(problem))
        except RequestError as problem:
            return _fail(f"invalid request: {problem}")

    return run


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
    proposal = _proposal(arguments, source)
    try:
        changes = source.preview(proposal)
    except PolicyError as problem:
        raise _UsageError(f"--policy `{arguments.policy}`: {problem}") from None
    except ProposalError as problem:
        option = "--attach-to" if arguments.policy is not None else "--bundle"
        raise _UsageError(f"{option}: {problem}") from None
    _print(changes)
    new = sum(1 for change in changes if change["newAccess"])
    return 1 if arguments.fail_on_new_access and new else 0


def _proposal(arguments: argparse.Namespace, source: Source) -> Proposal:
    if arguments.bundle is not None:
        try:
            return BundleProposal(bundle_to_fleet(_read_json(arguments.bundle, "--bundle")))
        except StoreError as problem:  # a bundle not in the format
            raise _UsageError(f"--bundle `{arguments.bundle}`: {problem}") from None
    kind = _KINDS[arguments.kind]
    target = arguments.attach_to
    if kind is PolicyKind.REPOSITORY:
        target = source.repository(target, "--attach-to")
    document = _read_json(arguments.policy, "--policy")
    if not isinstance(document, dict):
        raise _UsageError(f"--policy `{arguments.policy}`: a policy is a JSON object")
    return PolicyProposal(document, kind, target)


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
