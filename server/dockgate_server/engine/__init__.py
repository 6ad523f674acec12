"""The engine: typed requests, compiled policies, IAM's evaluation flow, decisions."""

from dockgate_server.engine.authorize import PolicySet, authorize
from dockgate_server.engine.compile import CompiledPolicy, compile_policy
from dockgate_server.engine.decide import Question, decide
from dockgate_server.engine.decision import Decision, Outcome, Phase, Reason
from dockgate_server.engine.request import Request, RequestError, build_request

__all__ = [
    "CompiledPolicy",
    "Decision",
    "Outcome",
    "Phase",
    "PolicySet",
    "Question",
    "Reason",
    "Request",
    "RequestError",
    "authorize",
    "build_request",
    "compile_policy",
    "decide",
]
