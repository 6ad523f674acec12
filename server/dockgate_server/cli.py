"""`dockgate …` commands."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TextIO

from dockgate_server import __version__
from dockgate_server.arguments import parse_context
from dockgate_server.bench.options import add_arguments as add_bench_arguments
from dockgate_server.cli_credentials import add_credential_commands
from dockgate_server.engine.compile import compile_policy
from dockgate_server.engine.request import RequestError
from dockgate_server.engine.snapshot import SnapshotBuilder
from dockgate_server.policy.findings import PolicyError, Severity
from dockgate_server.policy.model import PolicyKind
from dockgate_server.policy.parse import load_json, parse_policy, validate_policy
from dockgate_server.remote import (
    RemoteError,
    remote_check,
    remote_export,
    remote_import,
    remote_simulate,
)
from dockgate_server.simulate import simulate_lines
from dockgate_server.store.bundle import bundle_to_fleet, fleet_to_bundle
from dockgate_server.store.sqlite import Store
from dockgate_server.store.validate import StoreError

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    arguments = parser.parse_args(argv)
    code: int = arguments.run(arguments)
    return code


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
        "--server", metavar="ADDRESS", help="decide on a running server (HOST:PORT)"
    )
    simulate.set_defaults(run=_simulate)

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

    store_help = f"the SQLite store (default: $DOCKGATE_STORE or {_default_store()})"
    run = commands.add_parser(
        "serve",
        help="serve decisions over gRPC (and the admin API on its own port)",
        description="A new store is seeded with a sample fleet. The admin port needs "
        "`authorization: Bearer TOKEN`: the token is $DOCKGATE_ADMIN_TOKEN, or generated on first "
        "start into DATA_DIR/admin-token (mode 0600). SIGTERM finishes the calls in flight.",
    )
    run.add_argument(
        "--data-dir", default=None, help=f"where the store and token live (default: {_data_dir()})"
    )
    run.add_argument(
        "--store",
        default=None,
        help="the SQLite store (default: $DOCKGATE_STORE or DATA_DIR/store.sqlite3)",
    )
    run.add_argument(
        "--listen", default="127.0.0.1:50051", help="the decision port (default: %(default)s)"
    )
    run.add_argument(
        "--admin-listen", default="127.0.0.1:50052", help="the admin port (default: %(default)s)"
    )
    run.add_argument(
        "--metrics-listen",
        default="127.0.0.1:9464",
        help="Prometheus metrics over HTTP; empty to turn off (default: %(default)s)",
    )
    run.add_argument(
        "--workers", type=int, default=1, help="processes sharing the decision port (default: 1)"
    )
    run.add_argument(
        "--cache-size",
        type=int,
        default=100_000,
        help="decisions each process keeps in its decision cache; 0 turns the cache off "
        "(default: %(default)s)",
    )
    run.add_argument("--tls-cert", help="PEM certificate chain: serve TLS on both ports")
    run.add_argument("--tls-key", help="PEM private key of --tls-cert")
    run.add_argument(
        "--tls-client-ca", help="PEM CA bundle: require client certificates it signed (mTLS)"
    )
    run.add_argument(
        "--no-sample",
        action="store_true",
        help="start a new store empty, not with the sample fleet",
    )
    run.add_argument("--ready-file", help="write the bound ports here as JSON once serving")
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    run.add_argument(
        "--clock-offset-file",
        metavar="FILE",
        help="seconds to add to the clock that session and login-token expiry read; re-read "
        "while serving (for tests and drills)",
    )
    registry = run.add_argument_group(
        "registry adapters", "answer a registry proxy on every pull and push (see the README)"
    )
    registry.add_argument(
        "--envoy",
        action="store_true",
        help="serve Envoy's ext_authz (envoy.service.auth.v3.Authorization) on the decision port",
    )
    registry.add_argument(
        "--http-auth-listen",
        metavar="HOST:PORT",
        help="serve nginx's auth_request endpoint (/auth) and the catalog over HTTP here",
    )
    registry.add_argument(
        "--registry-account",
        metavar="ACCOUNT",
        help="the registry's account (with --registry-region); default: from "
        "ACCOUNT.dkr.ecr.REGION.… host names",
    )
    registry.add_argument("--registry-region", metavar="REGION")
    registry.add_argument(
        "--trusted-proxy",
        action="append",
        default=[],
        metavar="CIDR",
        help="a proxy address or network whose X-Forwarded-For is believed; repeat "
        "(the HTTP endpoint also trusts loopback, where nginx runs)",
    )
    run.add_argument(
        "--sweep-interval",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how often expired sessions and retired login keys are dropped (default: %(default)s)",
    )
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
        metavar="ADDRESS",
        help="go through a running server's admin port (token: $DOCKGATE_ADMIN_TOKEN)",
    )
    load.set_defaults(run=_import)

    dump = commands.add_parser("export", help="print the store as a bundle")
    dump.add_argument("--store", default=None, help=store_help)
    dump.add_argument(
        "--server",
        metavar="ADDRESS",
        help="go through a running server's admin port (token: $DOCKGATE_ADMIN_TOKEN)",
    )
    dump.set_defaults(run=_export)

    check = commands.add_parser(
        "check",
        help="decide one request against the store",
        description="Prints one JSON object: the decision, the revision it was made at, the "
        "evaluation errors, and under --explain the statements or gates that decided.",
    )
    check.add_argument("--store", default=None, help=store_help)
    check.add_argument("--server", metavar="ADDRESS", help="decide on a running server (HOST:PORT)")
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
    check.set_defaults(run=_check)

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
    bench.set_defaults(run=_bench)
    add_credential_commands(commands, _data_dir())
    return parser


def _data_dir() -> str:
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(data) / "dockgate")


def _default_store() -> str:
    return str(Path(_data_dir()) / "store.sqlite3")


def _serve(arguments: argparse.Namespace) -> int:
    from dockgate_server.service.adapters import AdapterConfig  # noqa: PLC0415 - grpc only here
    from dockgate_server.service.server import ServeConfig, serve  # noqa: PLC0415

    data_dir = Path(arguments.data_dir or _data_dir())
    store = Path(arguments.store or os.environ.get("DOCKGATE_STORE") or data_dir / "store.sqlite3")
    if bool(arguments.tls_cert) != bool(arguments.tls_key):
        return _fail("--tls-cert and --tls-key go together")
    adapters = AdapterConfig(
        envoy=arguments.envoy,
        http_listen=arguments.http_auth_listen,
        account=arguments.registry_account,
        region=arguments.registry_region,
        trusted_proxies=tuple(arguments.trusted_proxy),
    )
    try:
        adapters.check()
    except ValueError as problem:
        return _fail(str(problem))
    config = ServeConfig(
        data_dir=data_dir,
        store=store,
        listen=arguments.listen,
        admin_listen=arguments.admin_listen,
        metrics_listen=arguments.metrics_listen or None,
        workers=max(1, arguments.workers),
        cache_size=max(0, arguments.cache_size),
        tls_cert=Path(arguments.tls_cert) if arguments.tls_cert else None,
        tls_key=Path(arguments.tls_key) if arguments.tls_key else None,
        tls_client_ca=Path(arguments.tls_client_ca) if arguments.tls_client_ca else None,
        seed_sample=not arguments.no_sample,
        ready_file=Path(arguments.ready_file) if arguments.ready_file else None,
        log_level=arguments.log_level,
        clock_offset_file=Path(arguments.clock_offset_file)
        if arguments.clock_offset_file
        else None,
        sweep_interval=max(0.05, arguments.sweep_interval),
        adapters=adapters,
    )
    return serve(config)


def _bench(arguments: argparse.Namespace) -> int:
    from dockgate_server.bench.harness import run  # noqa: PLC0415 - grpc only here

    return run(arguments)


def _store_path(arguments: argparse.Namespace) -> str:
    return str(arguments.store or os.environ.get("DOCKGATE_STORE") or _default_store())


def _fail(message: str) -> int:
    print(f"dockgate: {message}", file=sys.stderr)
    return 2


def _open(name: str) -> TextIO:
    return sys.stdin if name == "-" else Path(name).open(encoding="utf-8")


def _simulate(arguments: argparse.Namespace) -> int:
    passed = failed = 0
    with _open(arguments.file) as source:
        if arguments.server:
            results: Iterable[dict[str, object]] = remote_simulate(arguments.server, source)
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


def _validate(arguments: argparse.Namespace) -> int:
    name = "-" if arguments.file == "-" else Path(arguments.file).name
    with _open(arguments.file) as source:
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
        print(f"{errors} errors, {len(findings) - errors} warnings")
    return 1 if errors else 0


def _import(arguments: argparse.Namespace) -> int:
    with _open(arguments.bundle) as source:
        text = source.read()
    if arguments.server:
        try:
            print(json.dumps(remote_import(arguments.server, text, arguments.replace)))
        except RemoteError as problem:
            return _fail(f"import refused, nothing stored: {problem}")
        return 0
    try:
        fleet = bundle_to_fleet(load_json(text))
        with Store(_store_path(arguments)) as store:
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
        try:
            print(json.dumps(remote_export(arguments.server), indent=2, ensure_ascii=False))
        except RemoteError as problem:
            return _fail(str(problem))
        return 0
    with Store(_store_path(arguments)) as store:
        print(json.dumps(fleet_to_bundle(store.load_fleet()), indent=2, ensure_ascii=False))
    return 0


def _check(arguments: argparse.Namespace) -> int:
    try:
        context = parse_context(arguments.context, arguments.context_json)
        session = None
        if arguments.session_policy:
            with _open(arguments.session_policy) as source:
                document = load_json(source.read())
            session = compile_policy(
                parse_policy(document, kind=PolicyKind.SESSION, name="sessionPolicy")
            )
    except (ValueError, OSError) as problem:
        return _fail(str(problem))
    if arguments.server:
        if session is not None:
            return _fail("--session-policy needs a local store: the service has no sessions yet")
        try:
            answer = remote_check(
                arguments.server,
                (arguments.principal, arguments.action, arguments.resource),
                context,
                explain=arguments.explain,
            )
        except RemoteError as problem:
            return _fail(str(problem))
        print(json.dumps(answer, ensure_ascii=False))
        return 0
    with Store(_store_path(arguments)) as store:
        snapshot = SnapshotBuilder(store).build()
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
