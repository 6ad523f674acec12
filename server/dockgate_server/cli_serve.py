"""The options of `dockgate serve`: the server's own and each door's, in `--help`'s order."""

from __future__ import annotations

import argparse

from dockgate_server.frontends.door import Option, Section
from dockgate_server.frontends.registry import OPTIONS as REGISTRY_OPTIONS
from dockgate_server.frontends.table import DOORS

__all__ = ["add_serve_options"]

_HELP_ORDER = (
    "--data-dir",
    "--store",
    "--listen",
    "--admin-listen",
    "--metrics-listen",
    "--workers",
    "--cache-size",
    "--max-in-flight",
    "--max-queued",
    "--tls-cert",
    "--tls-key",
    "--tls-client-ca",
    "--no-sample",
    "--ready-file",
    "--log-level",
    "--clock-offset-file",
    "--envoy",
    "--http-auth-listen",
    "--registry-account",
    "--registry-host",
    "--registry-region",
    "--trusted-proxy",
    "--max-staleness",
    "--sweep-interval",
)
"""Where each option has always been listed; a door's new option comes after these."""


def add_serve_options(parser: argparse.ArgumentParser, data_dir: str) -> None:
    """Every option of `serve` on `parser`, and the `addresses` its HOST:PORT options are
    checked from (`empty_off`: those an empty value turns off)."""
    options = [
        *_server_options(data_dir),
        *REGISTRY_OPTIONS,
        *(option for door in DOORS for option in door.options),
    ]
    rank = {flag: index for index, flag in enumerate(_HELP_ORDER)}
    options.sort(key=lambda option: rank.get(option.flags[0], len(rank)))  # stable: table order
    registry: argparse._ArgumentGroup | None = None
    for option in options:
        if option.section is Section.REGISTRY:
            if registry is None:
                registry = parser.add_argument_group(
                    "registry adapters",
                    "answer a registry proxy on every pull and push (see the README)",
                )
            registry.add_argument(*option.flags, **option.arguments)
        else:
            parser.add_argument(*option.flags, **option.arguments)
    listening = [option for option in options if option.listens]
    parser.set_defaults(
        addresses=tuple((_dest(option), option.flags[0], True) for option in listening),
        empty_off=tuple(_dest(option) for option in listening if option.empty_turns_off),
    )


def _server_options(data_dir: str) -> list[Option]:
    """The options of the server itself (its store, processes, TLS, logs), not of a door."""
    return [
        Option(
            ("--data-dir",),
            {
                "default": None,
                "help": f"where the store and token live, made mode 0700 (default: {data_dir})",
            },
        ),
        Option(
            ("--store",),
            {
                "default": None,
                "help": "the store: a SQLite path or `sqlite:///PATH`, or "
                "`postgresql://USER@HOST:PORT/DB` shared by every replica "
                "(default: $DOCKGATE_STORE or DATA_DIR/store.sqlite3)",
            },
        ),
        Option(
            ("--workers",),
            {
                "type": int,
                "default": 1,
                "help": "processes sharing the decision port (default: 1)",
            },
        ),
        Option(
            ("--cache-size",),
            {
                "type": int,
                "default": 100_000,
                "help": "decisions each process keeps in its decision cache; 0 turns the cache "
                "off (default: %(default)s)",
            },
        ),
        Option(("--tls-cert",), {"help": "PEM certificate chain: serve TLS on both ports"}),
        Option(("--tls-key",), {"help": "PEM private key of --tls-cert"}),
        Option(
            ("--tls-client-ca",),
            {"help": "PEM CA bundle: require client certificates it signed (mTLS)"},
        ),
        Option(
            ("--no-sample",),
            {
                "action": "store_true",
                "help": "start a new store empty, not with the sample fleet",
            },
        ),
        Option(("--ready-file",), {"help": "write the bound ports here as JSON once serving"}),
        Option(
            ("--log-level",),
            {
                "default": "info",
                "choices": ["debug", "info", "warning", "error"],
                "help": "the least severe log record written, as JSON lines on standard error "
                "(default: %(default)s)",
            },
        ),
        Option(
            ("--clock-offset-file",),
            {
                "metavar": "FILE",
                "help": "seconds to add to the clock that session and login-token expiry read; "
                "re-read while serving (for tests and drills)",
            },
        ),
        Option(
            ("--max-staleness",),
            {
                "metavar": "SECONDS",
                "help": "refuse decisions (UNAVAILABLE) and turn the decision port's health "
                "NOT_SERVING once the store has not answered for this long, rather than decide "
                "from old policy (default: off, the last snapshot serves however old)",
            },
        ),
    ]


def _dest(option: Option) -> str:
    return option.flags[0].lstrip("-").replace("-", "_")
