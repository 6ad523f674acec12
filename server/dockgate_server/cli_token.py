"""`dockgate token-key …` and `dockgate token-config`: the registry token server's signing keys in
the store, and the `auth: token` section a registry needs to trust them.

`token-key rotate` makes a new key (the previous one keeps verifying, and stays in the bundle,
for the grace period); `token-key certificates` prints the PEM bundle (`rootcertbundle`);
`token-key jwks` the JWKS document; `token-config` the registry's YAML (once the store has a
key) for the token options `dockgate serve` runs with, and with `--write` the bundle file (mode
0644: certificates are public). Private keys never leave the store. Every command but `rotate`
only reads, and none creates a store.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from dockgate_server.addresses import parse_address
from dockgate_server.engine.sessions import format_time
from dockgate_server.registry.token.issue import DEFAULT_ISSUER, TOKEN_PATH
from dockgate_server.registry.token.keys import (
    ALGORITHMS,
    KEY_GRACE,
    Keyring,
    load_keyring,
    new_token_key,
)
from dockgate_server.store.port import FleetStore, MissingStoreError, StoreError, open_store

__all__ = ["DEFAULT_BUNDLE", "DEFAULT_ISSUER", "add_token_commands"]

DEFAULT_BUNDLE = "/etc/docker/registry/dockgate-token.pem"
"""beside Debian's `/etc/docker/registry/config.yml`"""


class _CommandError(Exception):
    """One `dockgate: …` line and exit 2, no traceback."""


def add_token_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], default_store: str
) -> None:
    keys = commands.add_parser(
        "token-key",
        help="the keys that sign registry bearer tokens: rotate, print certificates or JWKS",
        description="The keys that sign the registry's bearer tokens, kept in the store so "
        "that every replica signs with the same one.",
    )
    actions = keys.add_subparsers(
        title="actions", required=True, metavar="ACTION", help="rotate, certificates or jwks"
    )
    rotate = actions.add_parser(
        "rotate",
        help="make a new signing key (the previous one verifies for the grace period)",
        description="Make a new token-signing key and sign with it from now on. The previous "
        "key keeps verifying, and its certificate stays in the bundle, for --grace seconds. "
        "A registry reads its rootcertbundle when it starts: write the new bundle "
        "(`dockgate token-config --write`) and restart it.",
    )
    _store_argument(rotate, default_store)
    rotate.add_argument(
        "--algorithm", choices=ALGORITHMS, default="ES256", help="default: %(default)s"
    )
    rotate.add_argument(
        "--grace",
        type=float,
        default=float(KEY_GRACE),
        metavar="SECONDS",
        help="how long retired keys stay trusted (default: %(default).0f)",
    )
    rotate.set_defaults(run=_rotate)

    certificates = actions.add_parser(
        "certificates",
        help="print the PEM certificates a registry trusts (its rootcertbundle)",
        description="Print the certificates of the current key and of the keys in their grace "
        "period, the current one first: the registry's rootcertbundle.",
    )
    _store_argument(certificates, default_store)
    certificates.set_defaults(run=_certificates)

    jwks = actions.add_parser(
        "jwks",
        help="print the JWKS document of the signing keys",
        description="Print the JWKS "
        "document (RFC 7517) of the current key and of the keys in their grace period.",
    )
    _store_argument(jwks, default_store)
    jwks.set_defaults(run=_jwks)

    config = commands.add_parser(
        "token-config",
        help="print a registry's `auth: token` configuration for Dockgate's token server",
        description="Print the `auth: token` section of a docker-registry configuration that "
        "trusts the tokens Dockgate issues; with --write, also write the certificate bundle "
        "it names (mode 0644). Give it the token options `dockgate serve` runs with "
        "(--token-listen, --token-service, --token-issuer), or the realm as clients reach it "
        "(--realm, e.g. behind a proxy).",
    )
    _store_argument(config, default_store)
    realm = config.add_mutually_exclusive_group(required=True)
    realm.add_argument("--realm", metavar="URL", help="where clients ask for tokens")
    realm.add_argument(
        "--token-listen",
        metavar="HOST:PORT",
        help="the server's --token-listen: the realm is http://HOST:PORT/token",
    )
    config.add_argument(
        "--service",
        "--token-service",
        dest="service",
        required=True,
        metavar="NAME",
        help="the tokens' audience (`aud`): the server's --token-service",
    )
    config.add_argument(
        "--issuer",
        "--token-issuer",
        dest="issuer",
        default=DEFAULT_ISSUER,
        metavar="NAME",
        help="the tokens' issuer (`iss`): the server's --token-issuer (default: %(default)s)",
    )
    config.add_argument(
        "--certificate-path",
        default=DEFAULT_BUNDLE,
        metavar="PATH",
        help="where the registry reads the bundle (default: %(default)s)",
    )
    config.add_argument(
        "--write", action="store_true", help="write the certificate bundle to --certificate-path"
    )
    config.set_defaults(run=_token_config)


def _store_argument(parser: argparse.ArgumentParser, default_store: str) -> None:
    parser.add_argument(
        "--store",
        help=f"a path, sqlite:///PATH or postgresql://… (default: $DOCKGATE_STORE, or "
        f"{default_store})",
    )
    parser.set_defaults(default_store=default_store)


# -- commands ---------------------------------------------------------------------------------


def _rotate(arguments: argparse.Namespace) -> int:
    if not 0 <= arguments.grace < float("inf"):
        return _fail(f"--grace `{arguments.grace}`: expected a number of seconds, 0 or more")
    now = time.time()
    key = new_token_key(arguments.algorithm, now)
    try:
        with _existing_store(arguments) as store:
            change = store.rotate_token_key(key, grace=arguments.grace)
            kept = [k.key_id for k in reversed(load_keyring(store.token_keys(), now).keys)]
    except (StoreError, ValueError, _CommandError) as problem:
        return _fail(str(problem))
    print(
        json.dumps(
            {
                "keyId": key.key_id,
                "algorithm": key.algorithm,
                "createdAt": format_time(key.created_at),
                "trusted": kept,
                "revision": change.revision,
            }
        )
    )
    return 0


def _certificates(arguments: argparse.Namespace) -> int:
    try:
        keyring = _keyring(arguments)
    except (StoreError, ValueError, _CommandError) as problem:
        return _fail(str(problem))
    sys.stdout.write(keyring.certificates())
    return 0


def _jwks(arguments: argparse.Namespace) -> int:
    try:
        keyring = _keyring(arguments)
    except (StoreError, ValueError, _CommandError) as problem:
        return _fail(str(problem))
    print(json.dumps(keyring.jwks(), indent=2))
    return 0


def _token_config(arguments: argparse.Namespace) -> int:
    path = Path(arguments.certificate_path)
    if arguments.token_listen is not None:
        try:
            arguments.realm = _realm_of(arguments.token_listen)
        except ValueError as problem:
            return _fail(str(problem))
    for option, value in (
        ("--realm", arguments.realm),
        ("--service", arguments.service),
        ("--issuer", arguments.issuer),
        ("--certificate-path", arguments.certificate_path),
    ):
        if not value or any(c < " " or c == '"' for c in value):
            return _fail(f'{option} `{value}`: expected a non-empty value without `"`')
    if not arguments.realm.startswith(("http://", "https://")):
        return _fail(f"--realm `{arguments.realm}`: expected an http:// or https:// URL")
    try:
        # read even without --write: a section that names no usable key would only fail later
        keyring = _keyring(arguments)
        if arguments.write:
            _write_bundle(path, keyring.certificates())
    except (StoreError, ValueError, _CommandError) as problem:
        return _fail(str(problem))
    print(
        "auth:\n"
        "  token:\n"
        f'    realm: "{arguments.realm}"\n'
        f'    service: "{arguments.service}"\n'
        f'    issuer: "{arguments.issuer}"\n'
        f'    rootcertbundle: "{path}"'
    )
    return 0


def _realm_of(listen: str) -> str:
    """`http://HOST:PORT/token` for the server's `--token-listen HOST:PORT`: an address clients
    can reach, so neither a wildcard host nor port 0. Raises ValueError naming the option."""
    address = parse_address(listen, "--token-listen")
    if address.host in ("0.0.0.0", "::"):
        raise ValueError(
            f"--token-listen `{listen}`: clients cannot reach a wildcard address: give the "
            "realm they reach with --realm"
        )
    return f"http://{address.target}{TOKEN_PATH}"


# -- plumbing ---------------------------------------------------------------------------------


def _existing_store(arguments: argparse.Namespace) -> FleetStore:
    """The store the command names, which must exist: these commands never make one."""
    path = arguments.store or os.environ.get("DOCKGATE_STORE") or arguments.default_store
    try:
        return open_store(path, create=False)
    except MissingStoreError as problem:
        raise _CommandError(
            f"{problem} (create one with `dockgate import BUNDLE --store {path}` or "
            "`dockgate serve`)"
        ) from None


def _keyring(arguments: argparse.Namespace) -> Keyring:
    with _existing_store(arguments) as store:
        stored = store.token_keys()
        where = store.describe()
    keyring = load_keyring(stored, time.time())
    if keyring.signing is None:
        raise _CommandError(
            f"store `{where}` has no token-signing key: make one with `dockgate token-key rotate`"
        )
    return keyring


def _write_bundle(path: Path, pem: str) -> None:
    """The bundle, replaced whole (a registry starting meanwhile never reads half of it)."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        with os.fdopen(descriptor, "w", encoding="ascii") as out:
            out.write(pem)
        partial.chmod(0o644)  # certificates are public: whatever the umask, the registry reads
        partial.replace(path)
    except OSError as problem:
        partial.unlink(missing_ok=True)
        raise _CommandError(
            f"--certificate-path `{path}`: cannot write: {problem.strerror or problem}"
        ) from None


def _fail(message: str) -> int:
    print(f"dockgate: {message}", file=sys.stderr)
    return 2
