"""`dockgate …` commands."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

from dockgate_server import __version__
from dockgate_server.addresses import parse_address
from dockgate_server.arguments import parse_context
from dockgate_server.bench.options import add_arguments as add_bench_arguments
from dockgate_server.channels import add_tls_arguments, channel_factory, tls_from_arguments
from dockgate_server.cli_analysis import add_analysis_commands
from dockgate_server.cli_credentials import add_credential_commands
from dockgate_server.cli_serve import add_serve_options
from dockgate_server.cli_token import add_token_commands
from dockgate_server.engine.compile import compile_policy
from dockgate_server.engine.request import RequestError
from dockgate_server.policy.findings import PolicyError, Severity
from dockgate_server.policy.model import PolicyKind
from dockgate_server.policy.parse import load_json, parse_policy, validate_policy
from dockgate_server.private_files import make_private_dirs, tighten
from dockgate_server.remote import (
    RemoteError,
    remote_check,
    remote_export,
    remote_import,
    remote_simulate,
)
from dockgate_server.service.follow import SnapshotFollower
from dockgate_server.simulate import simulate_lines
from dockgate_server.store.bundle import bundle_to_fleet, fleet_to_bundle
from dockgate_server.store.port import FleetStore, MissingStoreError, StoreError, open_store

__all__ = ["main"]


class UsageError(Exception):
    """A mistake in what the user asked for: one `dockgate: ...` line and exit 2, no traceback."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    arguments = parser.parse_args(argv)
    try:
        _check_addresses(arguments)
        code: int = arguments.run(arguments)
    except UsageError as problem:
        return _fail(str(problem))
    return code


def _check_addresses(arguments: argparse.Namespace) -> None:
    """Every `HOST:PORT` option, before anything is created or connected (`addresses` is set
    by each command: (attribute, option, listens)). A valid one is rewritten in the form every
    peer takes (`[::1]:PORT` for IPv6)."""
    for attribute, option, listens in getattr(arguments, "addresses", ()):
        value = getattr(arguments, attribute, None)
        if value is None or (value == "" and attribute in getattr(arguments, "empty_off", ())):
            continue  # "": that server is turned off
        try:
            setattr(arguments, attribute, parse_address(value, option, listen=listens).target)
        except ValueError as problem:
            raise UsageError(str(problem)) from None


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dockgate",
        description="Authorization decisions for container registries, as AWS IAM makes them "
        "for Amazon ECR.",
    )
    parser.add_argument("--version", action="version", version=f"dockgate {__version__}")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    simulate = commands.add_parser(
        "simulate",
        help="decide simulation cases (JSON Lines) and compare with their `expect`",
        description="Read simulation cases, one JSON object a line; print one JSON result a line "
        "and an `N passed, N failed` summary. Exits 1 when any case fails or cannot be decided.",
    )
    simulate.add_argument("file", metavar="FILE", help="a JSON Lines file, or - for standard input")
    simulate.add_argument(
        "--server",
        metavar="HOST:PORT",
        help="decide on a running server's decision port instead of in this process",
    )
    add_tls_arguments(simulate)
    simulate.set_defaults(run=_simulate, addresses=_CLIENT_ADDRESS)

    validate = commands.add_parser(
        "validate",
        help="validate one policy document and print every finding with its JSON pointer",
        description="Exits 1 when the policy has an error; warnings alone exit 0.",
    )
    validate.add_argument(
        "file", metavar="FILE", help="a policy JSON file, or - for standard input"
    )
    validate.add_argument(
        "--kind",
        choices=[str(kind) for kind in PolicyKind],
        default=str(PolicyKind.IDENTITY),
        help="what the policy is (default: identity)",
    )
    validate.add_argument("--json", action="store_true", help="print findings as JSON lines")
    validate.set_defaults(run=_validate)

    store_help = (
        "the store: a SQLite path or `sqlite:///PATH`, or `postgresql://USER@HOST:PORT/DB`"
        f" (default: $DOCKGATE_STORE or {_default_store()})"
    )
    run = commands.add_parser(
        "serve",
        help="serve decisions over gRPC (and the admin API on its own port)",
        description="A new store is seeded with a sample fleet. The admin port needs "
        "`authorization: Bearer TOKEN`: the token is $DOCKGATE_ADMIN_TOKEN, or generated on first "
        "start into DATA_DIR/admin-token (mode 0600). SIGTERM finishes the calls in flight.",
    )
    add_serve_options(run, _data_dir())
    run.set_defaults(run=_serve)
    load = commands.add_parser(
        "import",
        help="validate a bundle and load it into the store in one transaction",
        description="Every policy is validated before anything is stored; the bundle lands "
        "atomically. Entities replace their stored versions; --replace makes the bundle the whole "
        "truth for the accounts it names.",
    )
    load.add_argument(
        "bundle", metavar="BUNDLE", help="a bundle JSON file, or - for standard input"
    )
    load.add_argument("--store", default=None, help=store_help)
    load.add_argument(
        "--replace", action="store_true", help="replace the accounts the bundle names"
    )
    load.add_argument(
        "--server",
        metavar="HOST:PORT",
        help="go through a running server's admin port (token: $DOCKGATE_ADMIN_TOKEN)",
    )
    add_tls_arguments(load)
    load.set_defaults(run=_import, addresses=_CLIENT_ADDRESS)

    dump = commands.add_parser(
        "export",
        help="print the store as a bundle",
        description="The store must exist: export never creates one.",
    )
    dump.add_argument("--store", default=None, help=store_help)
    dump.add_argument(
        "--server",
        metavar="HOST:PORT",
        help="go through a running server's admin port (token: $DOCKGATE_ADMIN_TOKEN)",
    )
    add_tls_arguments(dump)
    dump.set_defaults(run=_export, addresses=_CLIENT_ADDRESS)

    check = commands.add_parser(
        "check",
        help="decide one request against the store",
        description="Prints one JSON object: the decision, the revision it was made at, the "
        "evaluation errors, and under --explain the statements or gates that decided. The store "
        "must exist: check never creates one.",
    )
    check.add_argument("--store", default=None, help=store_help)
    check.add_argument(
        "--server",
        metavar="HOST:PORT",
        help="decide on a running server's decision port instead of the store",
    )
    check.add_argument("--principal", required=True, help="the caller's ARN or service name")
    check.add_argument("--action", required=True, help="`service:Action`, e.g. ecr:BatchGetImage")
    check.add_argument(
        "--resource", required=True, help="a repository ARN, or * for actions without one"
    )
    check.add_argument(
        "--context",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a context value; repeat a key to give a multivalued key",
    )
    check.add_argument("--context-json", metavar="JSON", help="the whole context as a JSON object")
    check.add_argument(
        "--session-policy", metavar="FILE", help="the session policy of the caller's credentials"
    )
    check.add_argument("--explain", action="store_true", help="include the reasons")
    check.add_argument(
        "--scan", action="store_true", help="scan every statement instead of using the index"
    )
    add_tls_arguments(check)
    check.set_defaults(run=_check, addresses=_CLIENT_ADDRESS)

    bench = commands.add_parser(
        "bench",
        help="load-test a server: a fleet, a request mix, figures, a check, a report",
        description="Load a synthetic ECR fleet through the admin API (or use the server's own), "
        "drive the decision port with a mix of pull and push requests (same-account and "
        "cross-account, allowed and denied, keys repeating in a Zipf distribution), print "
        "requests and decisions per second, latency percentiles and errors by status, and check "
        "a sample of the answers against the in-process engine. With --baseline, a bare grpcio "
        "server of the same contract is measured in the same run and every figure is printed "
        "beside it as a ratio. Exits 1 when a checked answer disagrees.",
    )
    add_bench_arguments(bench)
    bench.set_defaults(
        run=_bench, addresses=(("server", "--server", False), ("admin", "--admin", False))
    )
    add_credential_commands(commands, _data_dir())
    add_analysis_commands(commands, _store_path)
    add_token_commands(commands, _default_store())
    return parser


_CLIENT_ADDRESS = (("server", "--server", False),)


def _data_dir() -> str:
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(data) / "dockgate")


def _default_store() -> str:
    return str(Path(_data_dir()) / "store.sqlite3")


def _serve(arguments: argparse.Namespace) -> int:
    from dockgate_server.frontends.door import Tls  # noqa: PLC0415
    from dockgate_server.frontends.registry import RegistrySettings  # noqa: PLC0415
    from dockgate_server.frontends.table import DOORS  # noqa: PLC0415
    from dockgate_server.service.auth import AdminTokenError, load_admin_token  # noqa: PLC0415
    from dockgate_server.service.server import ServeConfig, serve  # noqa: PLC0415

    data_dir = Path(arguments.data_dir or _data_dir())
    store = str(arguments.store or os.environ.get("DOCKGATE_STORE") or data_dir / "store.sqlite3")
    max_staleness = (
        _seconds(arguments.max_staleness, "--max-staleness")
        if arguments.max_staleness is not None
        else None
    )
    if bool(arguments.tls_cert) != bool(arguments.tls_key):
        return _fail("--tls-cert and --tls-key go together")
    for option, name in (
        ("--tls-cert", arguments.tls_cert),
        ("--tls-key", arguments.tls_key),
        ("--tls-client-ca", arguments.tls_client_ca),
    ):
        if name:
            _readable(name, option)
    try:
        doors = {door.name: door.configure(arguments) for door in DOORS}
        registry = RegistrySettings.from_arguments(arguments)
        registry.check(
            needed=any(door.uses_registry and doors[door.name] is not None for door in DOORS)
        )
    except ValueError as problem:
        return _fail(str(problem))
    # every option is checked: now the data folder, then the token, before serve() seeds the
    # store, so that a token that must not be used stops the start with nothing else made
    _make_data_dir(data_dir, given=arguments.data_dir is not None)
    try:
        load_admin_token(data_dir / "admin-token")
    except AdminTokenError as problem:
        return _fail(str(problem))
    tls = None
    if arguments.tls_cert and arguments.tls_key:
        client_ca = Path(arguments.tls_client_ca) if arguments.tls_client_ca else None
        tls = Tls(Path(arguments.tls_cert), Path(arguments.tls_key), client_ca)
    config = ServeConfig(
        data_dir=data_dir,
        store=store,
        doors={name: settings for name, settings in doors.items() if settings is not None},
        registry=registry,
        workers=max(1, arguments.workers),
        tls=tls,
        cache_size=max(0, arguments.cache_size),
        seed_sample=not arguments.no_sample,
        ready_file=Path(arguments.ready_file) if arguments.ready_file else None,
        log_level=arguments.log_level,
        clock_offset_file=Path(arguments.clock_offset_file)
        if arguments.clock_offset_file
        else None,
        max_staleness=max_staleness,
    )
    try:
        return serve(config)
    except (StoreError, AdminTokenError) as problem:  # both raised before anything listens
        return _fail(str(problem))


def _seconds(text: str, option: str) -> float:
    """A positive, finite number of seconds; a `UsageError` naming `option` otherwise."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise UsageError(f"{option} `{text}`: expected a number of seconds above 0")
    return value


def _make_data_dir(data_dir: Path, *, given: bool) -> None:
    """The data directory holds the store's signing keys and the admin token: mode 0700.

    The default one is Dockgate's own, so one an older version left open (0755) is tightened;
    a folder named by --data-dir that exists already is the user's, and keeps its mode (the
    files in it are 0600 anyway).
    """
    try:
        existed = data_dir.is_dir()
        make_private_dirs(data_dir)
        if existed and not given:
            tighten(data_dir, 0o700)
    except OSError as problem:
        option = "--data-dir" if given else "the data directory"
        raise UsageError(f"{option} `{data_dir}`: {_reason(problem)}") from None


def _bench(arguments: argparse.Namespace) -> int:
    from dockgate_server.bench.harness import run  # noqa: PLC0415 - grpc only here

    return run(arguments)


def _store_path(arguments: argparse.Namespace) -> str:
    return str(arguments.store or os.environ.get("DOCKGATE_STORE") or _default_store())


def _existing_store(arguments: argparse.Namespace) -> FleetStore:
    """The store of a read-only command, which must exist: it never makes one."""
    path = _store_path(arguments)
    try:
        return open_store(path, create=False)
    except MissingStoreError as problem:
        raise UsageError(
            f"{problem} (create one with `dockgate import BUNDLE --store {path}` or "
            "`dockgate serve`)"
        ) from None
    except StoreError as problem:
        raise UsageError(str(problem)) from None


def _remote_options(arguments: argparse.Namespace) -> dict[str, Any]:
    """`connect=`: how remote.py opens its channel, when the TLS options ask for TLS."""
    try:
        tls = tls_from_arguments(arguments)
    except ValueError as problem:
        raise UsageError(str(problem)) from None
    return {} if tls is None else {"connect": channel_factory(tls)}


def _fail(message: str) -> int:
    print(f"dockgate: {message}", file=sys.stderr)
    return 2


def _open(name: str, what: str) -> TextIO:
    """An input file (`-`: standard input); `what` names it in the error of one that cannot be
    read."""
    if name == "-":
        return sys.stdin
    try:
        return Path(name).open(encoding="utf-8")
    except OSError as problem:
        raise UsageError(f"{what} `{name}`: cannot read: {_reason(problem)}") from None


def _readable(name: str, option: str) -> None:
    try:
        Path(name).read_bytes()
    except OSError as problem:
        raise UsageError(f"{option} `{name}`: cannot read: {_reason(problem)}") from None


def _reason(problem: OSError) -> str:
    return problem.strerror or str(problem)


def _simulate(arguments: argparse.Namespace) -> int:
    passed = failed = 0
    connect = _remote_options(arguments) if arguments.server else {}
    with _open(arguments.file, "FILE") as source:
        if arguments.server:
            results: Iterable[dict[str, object]] = remote_simulate(
                arguments.server, source, **connect
            )
        else:
            results = (result.to_json() for result in simulate_lines(source))
        try:
            for result in results:
                print(json.dumps(result, ensure_ascii=False))
                if result["ok"]:
                    passed += 1
                else:
                    failed += 1
        except RemoteError as problem:
            return _fail(str(problem))
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _validate(arguments: argparse.Namespace) -> int:
    name = "-" if arguments.file == "-" else Path(arguments.file).name
    with _open(arguments.file, "FILE") as source:
        text = source.read()
    try:
        document = load_json(text)
    except ValueError as problem:
        print(f"error: policy `{name}`: invalid JSON: {problem}")
        return 1
    findings = validate_policy(document, kind=PolicyKind(arguments.kind), name=name)
    for finding in findings:
        if arguments.json:
            print(
                json.dumps(
                    {
                        "severity": str(finding.severity),
                        "policy": finding.policy,
                        "pointer": finding.pointer,
                        "message": finding.message,
                    }
                )
            )
        else:
            print(f"{finding.severity}: {finding}")
    errors = sum(1 for f in findings if f.severity is Severity.ERROR)
    if not arguments.json:
        warnings = len(findings) - errors
        print(f"{_count(errors, 'error')}, {_count(warnings, 'warning')}")
    return 1 if errors else 0


def _import(arguments: argparse.Namespace) -> int:
    connect = _remote_options(arguments) if arguments.server else {}
    with _open(arguments.bundle, "BUNDLE") as source:
        text = source.read()
    if arguments.server:
        try:
            print(json.dumps(remote_import(arguments.server, text, arguments.replace, **connect)))
        except RemoteError as problem:
            return _fail(f"import refused, nothing stored: {problem}")
        return 0
    try:
        fleet = bundle_to_fleet(load_json(text))
        with open_store(_store_path(arguments)) as store:
            change = store.import_fleet(fleet, replace=arguments.replace)
    except (StoreError, PolicyError) as problem:
        return _fail(f"import refused, nothing stored: {problem}")
    except ValueError as problem:
        return _fail(f"import refused, nothing stored: the bundle is not JSON: {problem}")
    print(
        json.dumps(
            {
                "revision": change.revision,
                "accounts": len(fleet.accounts),
                "users": len(fleet.users),
                "roles": len(fleet.roles),
                "repositories": len(fleet.repositories),
            }
        )
    )
    return 0


def _export(arguments: argparse.Namespace) -> int:
    if arguments.server:
        connect = _remote_options(arguments)
        try:
            bundle = remote_export(arguments.server, **connect)
        except RemoteError as problem:
            return _fail(str(problem))
        print(json.dumps(bundle, indent=2, ensure_ascii=False))
        return 0
    try:
        with _existing_store(arguments) as store:
            fleet = store.load_fleet()
    except StoreError as problem:  # a store that went away after it opened
        return _fail(str(problem))
    print(json.dumps(fleet_to_bundle(fleet), indent=2, ensure_ascii=False))
    return 0


def _check(arguments: argparse.Namespace) -> int:
    try:
        context = parse_context(arguments.context, arguments.context_json)
        session = None
        if arguments.session_policy:
            with _open(arguments.session_policy, "--session-policy") as source:
                document = load_json(source.read())
            session = compile_policy(
                parse_policy(document, kind=PolicyKind.SESSION, name="sessionPolicy")
            )
    except (ValueError, OSError) as problem:
        return _fail(str(problem))
    if arguments.server:
        if session is not None:
            return _fail("--session-policy needs a local store: the service has no sessions yet")
        connect = _remote_options(arguments)
        try:
            answer = remote_check(
                arguments.server,
                (arguments.principal, arguments.action, arguments.resource),
                context,
                explain=arguments.explain,
                **connect,
            )
        except RemoteError as problem:
            return _fail(str(problem))
        print(json.dumps(answer, ensure_ascii=False))
        return 0
    try:
        with _existing_store(arguments) as store:
            snapshot = SnapshotFollower(store).build()
    except StoreError as problem:
        return _fail(str(problem))
    try:
        decision = snapshot.authorize(
            arguments.principal,
            arguments.action,
            arguments.resource,
            context,
            session_policy=session,
            indexed=not arguments.scan,
        )
    except RequestError as problem:
        return _fail(f"invalid request: {problem}")
    result: dict[str, object] = {"decision": str(decision.outcome), "revision": snapshot.revision}
    if decision.errors:
        result["errors"] = list(decision.errors)
    if arguments.explain:
        result["reasons"] = [reason.to_json() for reason in decision.reasons]
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
