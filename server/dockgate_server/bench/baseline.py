"""The bare baseline: `dockgate.v1.Authorizer` served by grpcio alone, answering a constant.

Run: `python -m dockgate_server.bench.baseline --listen 127.0.0.1:0 --workers N --ready-file F`.
The same contract and message types as `dockgate serve` (each request is decoded as an
`AuthorizeRequest`, each answer encoded from an `AuthorizeResponse`), the same server options and
the same worker processes sharing the port (SO_REUSEPORT), and a handler that decides nothing: it
returns one `AuthorizeResponse` (outcome Allowed, at `--revision`, the size of Dockgate's own
answer), or one such result per item of a `BatchAuthorize`. What Dockgate costs is the difference.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import time
from collections.abc import Sequence
from pathlib import Path

import grpc

from dockgate.v1 import authorizer_pb2, authorizer_pb2_grpc
from dockgate_server.service.admission import DEFAULT_QUEUE, queue_options
from dockgate_server.service.processes import end_with_parent

__all__ = ["BareAuthorizer", "main"]

_MAX_MESSAGE = 8 * 1024 * 1024
_OPTIONS = [  # as `dockgate serve` sets them, its bounded queue of calls included
    ("grpc.max_receive_message_length", _MAX_MESSAGE),
    ("grpc.max_send_message_length", _MAX_MESSAGE),
    ("grpc.so_reuseport", 1),
    *queue_options(DEFAULT_QUEUE),
]


class BareAuthorizer(authorizer_pb2_grpc.AuthorizerServicer):
    """Every answer is the same message: nothing is decided, looked up or counted."""

    def __init__(self, revision: int) -> None:
        self.answer = authorizer_pb2.AuthorizeResponse(
            outcome=authorizer_pb2.OUTCOME_ALLOWED, revision=revision
        )
        self.revision = revision

    async def Authorize(  # noqa: N802 - the contract's name
        self,
        request: authorizer_pb2.AuthorizeRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> authorizer_pb2.AuthorizeResponse:
        return self.answer

    async def BatchAuthorize(  # noqa: N802 - the contract's name
        self,
        request: authorizer_pb2.BatchAuthorizeRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> authorizer_pb2.BatchAuthorizeResponse:
        result = authorizer_pb2.BatchAuthorizeResult(decision=self.answer)
        return authorizer_pb2.BatchAuthorizeResponse(
            results=[result] * len(request.items), revision=self.revision
        )

    async def Simulate(  # noqa: N802 - the contract's name
        self,
        request: authorizer_pb2.SimulateRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> authorizer_pb2.SimulateResponse:
        return authorizer_pb2.SimulateResponse(id=request.id, decision="Allowed", ok=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=1, help="processes sharing the port")
    parser.add_argument("--revision", type=int, default=1, help="the revision every answer names")
    parser.add_argument("--ready-file", help="write the port and worker pids here once serving")
    arguments = parser.parse_args(argv)
    end_with_parent()  # the harness that started this may be killed; so are we
    host, _, port_text = arguments.listen.rpartition(":")
    host = host.strip("[]")
    # every worker binds the same port: pick it once, hold it while they bind
    reserved = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    reserved.bind((host, int(port_text)))
    port = reserved.getsockname()[1]
    listen = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    children = [_fork_worker(listen, arguments.revision) for _ in range(max(1, arguments.workers))]
    reserved.close()
    stop = False

    def stopping(number: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, stopping)
    signal.signal(signal.SIGINT, stopping)
    if arguments.ready_file:
        ready = Path(arguments.ready_file)
        partial = ready.with_suffix(".partial")
        partial.write_text(
            json.dumps({"decision_port": port, "pid": os.getpid(), "workers": children})
        )
        partial.replace(ready)
    while not stop and all(_alive(pid) for pid in children):
        time.sleep(0.2)
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    for pid in children:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    return 0


def _fork_worker(listen: str, revision: int) -> int:
    """A worker process, forked before any gRPC object exists (as `dockgate serve` does)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        end_with_parent()
        code = 0
        try:
            asyncio.run(_serve(listen, revision, write_end))
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        if pipe.read(1) != b"1":
            raise RuntimeError("a baseline worker exited before serving")
    return pid


async def _serve(listen: str, revision: int, ready: int) -> None:
    server = grpc.aio.server(options=_OPTIONS)
    authorizer_pb2_grpc.add_AuthorizerServicer_to_server(BareAuthorizer(revision), server)
    if server.add_insecure_port(listen) == 0:
        raise OSError(f"cannot listen on `{listen}`")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stop.set)
    os.write(ready, b"1")
    os.close(ready)
    await stop.wait()
    await server.stop(1.0)


def _alive(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return done == 0


if __name__ == "__main__":
    raise SystemExit(main())
