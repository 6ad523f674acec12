"""`dockgate …` commands."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from dockgate_server import __version__
from dockgate_server.policy.findings import Severity
from dockgate_server.policy.model import PolicyKind
from dockgate_server.policy.parse import load_json, validate_policy
from dockgate_server.simulate import simulate_lines

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
    return parser


def _open(name: str) -> TextIO:
    return sys.stdin if name == "-" else Path(name).open(encoding="utf-8")


def _simulate(arguments: argparse.Namespace) -> int:
    passed = failed = 0
    with _open(arguments.file) as source:
        for result in simulate_lines(source):
            print(json.dumps(result.to_json(), ensure_ascii=False))
            if result.ok:
                passed += 1
            else:
                failed += 1
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


if __name__ == "__main__":
    raise SystemExit(main())
