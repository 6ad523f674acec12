"""`dockgate` commands for temporary credentials, through a running server's admin port.

`assume-role`, `get-federation-token`, `list-sessions`, `revoke-session`, `get-login-password`,
`revoke-login-token`, `rotate-login-key`. The admin token is $DOCKGATE_ADMIN_TOKEN, or the
`admin-token` file of the server's data directory (`--data-dir`). Each result is one JSON line,
times in ISO 8601 (UTC); `get-login-password` prints the bare password unless `--json`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from dockgate.v1 import admin_pb2, admin_pb2_grpc, authorizer_pb2
from dockgate_server.arguments import parse_context, split_pair
from dockgate_server.channels import add_tls_arguments, open_channel, tls_from_arguments
from dockgate_server.engine.sessions import format_time

__all__ = ["add_credential_commands"]

_TIMEOUT = 30.0


def add_credential_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], data_dir: str
) -> None:
    assume = _command(
        commands,
        "assume-role",
        "start a role session, as STS AssumeRole (the role's trust policy decides)",
        data_dir,
        _assume_role,
    )
    assume.add_argument("--caller", required=True, help="the user, role session or service ARN")
    assume.add_argument("--role-arn", required=True, help="the role to assume")
    assume.add_argument(
        "--session-name", required=True, help="the session's name, the last part of its ARN"
    )
    _session_arguments(assume, "900 up to the role's maximum (default 3600)")
    assume.add_argument(
        "--source-identity", help="sts:SourceIdentity, kept by the session and its children"
    )
    assume.add_argument("--external-id", help="sts:ExternalId, for trust policies that ask for it")

    federate = _command(
        commands,
        "get-federation-token",
        "start a federated-user session for an IAM user, as STS GetFederationToken",
        data_dir,
        _federate,
    )
    federate.add_argument("--caller", required=True, help="the IAM user's ARN")
    federate.add_argument("--name", required=True, help="the federated user's name")
    _session_arguments(federate, "900 to 129600 (default 43200)")

    listing = _command(commands, "list-sessions", "list live sessions", data_dir, _list)
    listing.add_argument("--account", default="", help="only this account's sessions")

    revoke = _command(
        commands, "revoke-session", "end a session and its login tokens now", data_dir, _revoke
    )
    revoke.add_argument("arn", metavar="SESSION_ARN", help="the session's ARN (list-sessions)")

    login = _command(
        commands,
        "get-login-password",
        "print a registry password for user AWS, as `aws ecr get-login-password`",
        data_dir,
        _login,
    )
    login.add_argument("--principal", required=True, help="the user, role session or federated ARN")
    login.add_argument(
        "--json",
        action="store_true",
        help="print one JSON line: the password, its token ID (for revoke-login-token), the "
        "principal and when it expires; default: the bare password, for `--password-stdin`",
    )
    _context_argument(login)

    forget = _command(
        commands, "revoke-login-token", "refuse one login token from now on", data_dir, _forget
    )
    forget.add_argument(
        "token_id", metavar="TOKEN_ID", help="the token's ID, as `get-login-password --json` shows"
    )

    _command(
        commands,
        "rotate-login-key",
        "sign new login tokens with a new key (tokens already issued stay valid)",
        data_dir,
        _rotate,
    )


def _command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    summary: str,
    data_dir: str,
    run: Callable[[argparse.Namespace, admin_pb2_grpc.PolicyAdminStub], object],
) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, help=summary, description=summary)
    parser.add_argument(
        "--server",
        metavar="HOST:PORT",
        default="127.0.0.1:50052",
        help="the server's admin port (default: %(default)s)",
    )
    parser.add_argument(
        "--data-dir",
        default=data_dir,
        help="where the admin token is, when $DOCKGATE_ADMIN_TOKEN is not set "
        "(default: %(default)s)",
    )
    add_tls_arguments(parser)
    parser.set_defaults(
        run=lambda arguments: _remote(arguments, run), addresses=(("server", "--server", False),)
    )
    return parser


def _session_arguments(parser: argparse.ArgumentParser, durations: str) -> None:
    parser.add_argument("--duration", type=int, default=0, help=f"seconds: {durations}")
    parser.add_argument("--policy", metavar="FILE", help="a session policy (JSON file)")
    parser.add_argument(
        "--tag", action="append", default=[], metavar="KEY=VALUE", help="a session tag; repeat"
    )
    _context_argument(parser)


def _context_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--context",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="the caller's request context; repeat a key for several values",
    )


# -- commands ---------------------------------------------------------------------------------


def _assume_role(arguments: argparse.Namespace, stub: admin_pb2_grpc.PolicyAdminStub) -> object:
    response = stub.AssumeRole(
        admin_pb2.AssumeRoleRequest(
            caller=arguments.caller,
            role_arn=arguments.role_arn,
            session_name=arguments.session_name,
            duration_seconds=arguments.duration,
            policy=_read(arguments.policy),
            tags=_tags(arguments.tag),
            source_identity=arguments.source_identity or "",
            external_id=arguments.external_id or "",
            context=_context(arguments.context),
        ),
        **_call_options(arguments),
    )
    return _session(response)


def _federate(arguments: argparse.Namespace, stub: admin_pb2_grpc.PolicyAdminStub) -> object:
    response = stub.GetFederationToken(
        admin_pb2.GetFederationTokenRequest(
            caller=arguments.caller,
            name=arguments.name,
            duration_seconds=arguments.duration,
            policy=_read(arguments.policy),
            tags=_tags(arguments.tag),
            context=_context(arguments.context),
        ),
        **_call_options(arguments),
    )
    return _session(response)


def _list(arguments: argparse.Namespace, stub: admin_pb2_grpc.PolicyAdminStub) -> object:
    response = stub.ListSessions(
        admin_pb2.ListRequest(account=arguments.account), **_call_options(arguments)
    )
    return [
        {
            "arn": s.arn,
            "caller": s.caller,
            "issuedAt": format_time(s.issued_at),
            "expiresAt": format_time(s.expires_at),
            "tags": dict(s.tags),
            "sourceIdentity": s.source_identity or None,
            "hasPolicy": bool(s.policy),
        }
        for s in response.sessions
    ]


def _revoke(arguments: argparse.Namespace, stub: admin_pb2_grpc.PolicyAdminStub) -> object:
    response = stub.RevokeSession(admin_pb2.ArnRef(arn=arguments.arn), **_call_options(arguments))
    return {"revision": response.revision}


def _login(arguments: argparse.Namespace, stub: admin_pb2_grpc.PolicyAdminStub) -> object:
    response = stub.GetLoginPassword(
        admin_pb2.GetLoginPasswordRequest(
            principal=arguments.principal, context=_context(arguments.context)
        ),
        **_call_options(arguments),
    )
    if not arguments.json:
        return response.password  # printed bare, for `--password-stdin`
    return {
        "password": response.password,
        "tokenId": response.token_id,
        "principal": response.principal,
        "expiresAt": format_time(response.expires_at),
    }


def _forget(arguments: argparse.Namespace, stub: admin_pb2_grpc.PolicyAdminStub) -> object:
    response = stub.RevokeLoginToken(
        admin_pb2.RevokeLoginTokenRequest(token_id=arguments.token_id), **_call_options(arguments)
    )
    return {"revision": response.revision}


def _rotate(arguments: argparse.Namespace, stub: admin_pb2_grpc.PolicyAdminStub) -> object:
    response = stub.RotateLoginKey(admin_pb2.RotateLoginKeyRequest(), **_call_options(arguments))
    return {"keyId": response.key_id, "revision": response.revision}


# -- plumbing ---------------------------------------------------------------------------------


def _remote(
    arguments: argparse.Namespace,
    run: Callable[[argparse.Namespace, admin_pb2_grpc.PolicyAdminStub], object],
) -> int:
    try:
        tls = tls_from_arguments(arguments)
        with open_channel(arguments.server, tls) as channel:
            result = run(arguments, admin_pb2_grpc.PolicyAdminStub(channel))
    except grpc.RpcError as error:
        code = error.code().name if isinstance(error, grpc.Call) else "UNKNOWN"
        details = error.details() if isinstance(error, grpc.Call) else str(error)
        print(f"dockgate: {code}: {details}", file=sys.stderr)
        return 1
    except ValueError as problem:
        print(f"dockgate: {problem}", file=sys.stderr)
        return 2
    # one JSON line per result: a list (list-sessions) is a line per item
    for item in result if isinstance(result, list) else [result]:
        print(item if isinstance(item, str) else json.dumps(item, ensure_ascii=False))
    return 0


def _call_options(arguments: argparse.Namespace) -> dict[str, Any]:
    token = os.environ.get("DOCKGATE_ADMIN_TOKEN")
    if token is not None and not token.strip():
        raise ValueError("$DOCKGATE_ADMIN_TOKEN is set but empty: set it to the server's token")
    if token is None:
        path = Path(arguments.data_dir) / "admin-token"
        try:
            token = path.read_text(encoding="utf-8").strip()
        except OSError:
            raise ValueError(
                f"no admin token: set DOCKGATE_ADMIN_TOKEN or pass --data-dir (tried `{path}`)"
            ) from None
        if not token:
            raise ValueError(f"--data-dir: the admin token file `{path}` is empty")
    return {"timeout": _TIMEOUT, "metadata": (("authorization", f"Bearer {token}"),)}


def _read(path: str | None) -> str:
    if not path:
        return ""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as problem:
        raise ValueError(f"--policy `{path}`: cannot read: {problem.strerror}") from None


def _tags(items: list[str]) -> dict[str, str]:
    return dict(split_pair(item, "--tag") for item in items)


def _context(items: list[str]) -> dict[str, authorizer_pb2.ContextValues]:
    return {
        key: authorizer_pb2.ContextValues(values=[value] if isinstance(value, str) else value)
        for key, value in parse_context(items).items()
    }


def _session(response: admin_pb2.SessionResponse) -> dict[str, object]:
    return {
        "arn": response.arn,
        "issuedAt": format_time(response.issued_at),
        "expiresAt": format_time(response.expires_at),
        "revision": response.revision,
    }
