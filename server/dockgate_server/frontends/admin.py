"""The admin port (`dockgate.v1.PolicyAdmin`) in one process, behind the admin token, with the
sweeper that drops expired sessions, revocations and retired login keys."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from dataclasses import dataclass

from dockgate.v1 import admin_pb2, admin_pb2_grpc
from dockgate_server.frontends.door import Listen, Option, Placement, Site
from dockgate_server.frontends.grpc_port import GrpcPort
from dockgate_server.service.admin import AdminService
from dockgate_server.service.auth import TokenInterceptor, load_admin_token
from dockgate_server.service.interceptors import CallTracker, UndecodableRefusal

__all__ = ["AdminDoor", "AdminSettings"]

_SERVICE = admin_pb2.DESCRIPTOR.services_by_name["PolicyAdmin"].full_name


@dataclass(frozen=True, slots=True)
class AdminSettings:
    listen: str = "127.0.0.1:50052"
    sweep_interval: float = 30.0
    """how often expired sessions, revocations and retired signing keys are dropped"""


class AdminDoor:
    name = "admin"
    placement = Placement.ONE_PROCESS
    announces = ("admin_port",)
    uses_registry = False
    options = (
        Option(
            ("--admin-listen",),
            {
                "metavar": "HOST:PORT",
                "default": "127.0.0.1:50052",
                "help": "the admin port (default: %(default)s)",
            },
            listens=True,
        ),
        Option(
            ("--sweep-interval",),
            {
                "type": float,
                "default": 30.0,
                "metavar": "SECONDS",
                "help": "how often expired sessions and retired login keys are dropped "
                "(default: %(default)s)",
            },
        ),
    )

    def configure(self, arguments: argparse.Namespace) -> AdminSettings:
        return AdminSettings(
            listen=arguments.admin_listen,
            sweep_interval=max(0.05, arguments.sweep_interval),
        )

    def listens(self, settings: AdminSettings) -> tuple[Listen, ...]:
        return (Listen("--admin-listen", settings.listen, "admin_port"),)

    async def open(self, settings: AdminSettings, site: Site) -> AdminPort:
        # `$DOCKGATE_ADMIN_TOKEN`, or the file in the data folder (made on first start)
        token = load_admin_token(site.data_dir / "admin-token")
        service = site.runtime.admin_service(site.registry.registry_region)
        calls = CallTracker()
        interceptors = [calls, TokenInterceptor(token), UndecodableRefusal()]
        port = GrpcPort(_SERVICE, calls=calls, interceptors=interceptors)
        admin_pb2_grpc.add_PolicyAdminServicer_to_server(service, port.server)
        try:
            bound = port.bind("--admin-listen", settings.listen, site.tls)
        except BaseException:
            service.close()
            raise
        site.grpc_ports[self.name] = port
        return AdminPort(port, service, settings.sweep_interval, {"admin_port": bound})


class AdminPort:
    """The admin port bound in one process, and its sweeper once serving."""

    def __init__(
        self, port: GrpcPort, service: AdminService, interval: float, ports: dict[str, int]
    ) -> None:
        self.port = port
        self.service = service
        self.interval = interval
        self.ports = ports
        self._sweeper: asyncio.Task[None] | None = None

    async def serve(self) -> None:
        self._sweeper = asyncio.create_task(self.service.sweep_forever(self.interval))
        await self.port.serve()

    async def reflect(self, reachable: bool, fresh: bool) -> None:
        await self.port.reflect(reachable, fresh)

    async def drain(self, grace: float) -> None:
        await self.port.drain(grace)
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        self.service.close()
