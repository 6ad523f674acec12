"""Dockgate's Python client: authorization decisions for container registries, over gRPC.

from dockgate import Client

with Client("127.0.0.1:50051") as client:
    decision = client.authorize(
        principal="arn:aws:iam::111122223333:user/reader",
        action="ecr:BatchGetImage",
        resource="arn:aws:ecr:us-east-1:111122223333:repository/team-a/app",
        context={"aws:SourceIp": "203.0.113.7"},
    )
    decision.outcome  # Outcome.ALLOWED, whose value is "Allowed"
"""

from dockgate._admin import AdminClient, Finding, LoginPassword, Session
from dockgate._client import AsyncClient, AuthorizeItem, Client, Credentials
from dockgate._errors import (
    AccessDeniedError,
    DockgateError,
    InternalError,
    InvalidRequestError,
    NotFoundError,
    OverloadedError,
    RevisionNotReachedError,
    TimeoutError,
    UnauthenticatedError,
    UnavailableError,
    WriteRefusedError,
)
from dockgate._model import (
    Access,
    AccessChange,
    AccessFinding,
    ConditionalStatement,
    Decision,
    Outcome,
    Reason,
    SimulationResult,
)

__version__ = "0.1.0"

__all__ = [
    "Access",
    "AccessChange",
    "AccessDeniedError",
    "AccessFinding",
    "AdminClient",
    "AsyncClient",
    "AuthorizeItem",
    "Client",
    "ConditionalStatement",
    "Credentials",
    "Decision",
    "DockgateError",
    "Finding",
    "InternalError",
    "InvalidRequestError",
    "LoginPassword",
    "NotFoundError",
    "Outcome",
    "OverloadedError",
    "Reason",
    "RevisionNotReachedError",
    "Session",
    "SimulationResult",
    "TimeoutError",
    "UnauthenticatedError",
    "UnavailableError",
    "WriteRefusedError",
    "__version__",
]
