"""The IAM policy language: model, parse and validate, ARNs, wildcards, variables, principals.

`parse` is imported from its module (`dockgate_server.policy.parse`): it depends on the condition
operator table, which itself builds on this package's wildcard matcher.
"""

from dockgate_server.policy.findings import Finding, PolicyError, Severity
from dockgate_server.policy.model import (
    ConditionClause,
    Effect,
    Policy,
    PolicyKind,
    SetQualifier,
    Statement,
)

__all__ = [
    "ConditionClause",
    "Effect",
    "Finding",
    "Policy",
    "PolicyError",
    "PolicyKind",
    "SetQualifier",
    "Severity",
    "Statement",
]
