"""The IAM policy language: model, parse and validate, ARNs, wildcards, variables, principals."""

from dockgate_server.policy.findings import Finding, PolicyError, Severity
from dockgate_server.policy.model import (
    ConditionClause,
    Effect,
    Policy,
    PolicyKind,
    SetQualifier,
    Statement,
)
from dockgate_server.policy.parse import load_json, parse_policy, validate_policy

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
    "load_json",
    "parse_policy",
    "validate_policy",
]
