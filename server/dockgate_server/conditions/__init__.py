"""Condition operators, one module per family; qualifiers, IfExists and Null in `evaluate`."""

from dockgate_server.conditions.evaluate import (
    CompiledCondition,
    compile_condition,
    evaluate_condition,
)
from dockgate_server.conditions.keys import Context, ContextValue
from dockgate_server.conditions.operators import OPERATORS, OperatorSpec

__all__ = [
    "OPERATORS",
    "CompiledCondition",
    "Context",
    "ContextValue",
    "OperatorSpec",
    "compile_condition",
    "evaluate_condition",
]
