"""Parse and validate a policy document of any kind; every finding carries a JSON pointer."""

from __future__ import annotations

import json
import re
from typing import Any

from dockgate_server.conditions.operators import BOOL, NULL, OPERATORS, lookup_operator
from dockgate_server.policy.actions import ECR_PREFIX, is_action_name, matches_ecr_action
from dockgate_server.policy.arn import has_wildcard_type, split_arn_pattern
from dockgate_server.policy.findings import Finding, PolicyError, Severity, escape_pointer
from dockgate_server.policy.glob import Chunk
from dockgate_server.policy.model import (
    VARIABLES_VERSION,
    ConditionClause,
    Effect,
    Policy,
    PolicyKind,
    SetQualifier,
    Statement,
)
from dockgate_server.policy.principal import EntryKind, PrincipalEntry, parse_principal_entry
from dockgate_server.policy.variables import (
    Template,
    VariableSyntaxError,
    literal_template,
    parse_template,
)

__all__ = [
    "MAX_JSON_DEPTH",
    "SIZE_LIMITS",
    "JsonDepthError",
    "load_json",
    "parse_policy",
    "validate_policy",
]

VERSIONS = ("2012-10-17", "2008-10-17")

SIZE_LIMITS = {
    # IAM: role inline policies may total 10,240; a managed policy 6,144 (whitespace excluded)
    PolicyKind.IDENTITY: 10_240,
    PolicyKind.BOUNDARY: 6_144,
    PolicyKind.SESSION: 2_048,
    PolicyKind.SCP: 5_120,
    PolicyKind.RCP: 5_120,
    PolicyKind.REPOSITORY: 10_240,  # ECR SetRepositoryPolicy.policyText
}
"""Characters of the policy with insignificant whitespace removed (semantics §2.8)."""

_TOP_KEYS = frozenset({"Version", "Id", "Statement"})
_STATEMENT_KEYS = frozenset(
    {
        "Sid",
        "Effect",
        "Principal",
        "NotPrincipal",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Condition",
    }
)
_PRINCIPAL_KEYS = ("AWS", "Service", "Federated", "CanonicalUser")
_IAM_CHARACTERS = frozenset("\t\n\r")
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_PREFIX_CHARACTERS = frozenset(_ALNUM + "-")
_SEPARATORS = frozenset(":/")
_QUALIFIERS = {
    "forallvalues:": SetQualifier.FOR_ALL_VALUES,
    "foranyvalue:": SetQualifier.FOR_ANY_VALUE,
}
_IF_EXISTS = "ifexists"


class JsonObject(dict[str, Any]):
    """A JSON object that remembers keys it saw twice (JSON parsers silently keep the last)."""

    duplicates: tuple[str, ...] = ()


MAX_JSON_DEPTH = 64
"""Arrays and objects nested in one another; a policy needs 7, a bundle or a case about 12."""

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


class JsonDepthError(ValueError):
    """JSON nested deeper than `MAX_JSON_DEPTH`: refused before a parser recurses into it."""


def load_json(text: str | bytes) -> Any:
    """`json.loads`, keeping track of duplicate object keys so validation can report them.

    Raises ValueError for text that is not JSON, `JsonDepthError` (a ValueError) for nesting
    past `MAX_JSON_DEPTH`: without the bound a hostile document ends in a RecursionError.
    """
    if isinstance(text, bytes):
        text = text.decode(json.detect_encoding(text), "surrogatepass")
    _check_depth(text)
    try:
        return json.loads(text, object_pairs_hook=_remember_duplicates)
    except RecursionError:
        raise _too_deep() from None


def _check_depth(text: str) -> None:
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return  # too few brackets to nest that deep: the common case costs two counts
    depth = 0
    for bracket in _NOT_BRACKET.sub("", _STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise _too_deep()
        else:
            depth -= 1


def _too_deep() -> JsonDepthError:
    return JsonDepthError(f"arrays and objects nest deeper than {MAX_JSON_DEPTH} levels")


def _remember_duplicates(pairs: list[tuple[str, Any]]) -> JsonObject:
    result = JsonObject(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        repeated = []
        for key, _ in pairs:
            if key in seen:
                repeated.append(key)
            seen.add(key)
        result.duplicates = tuple(repeated)
    return result


def parse_policy(document: object, *, kind: PolicyKind, name: str) -> Policy:
    """The validated policy; raises `PolicyError` listing every finding when any is an error."""
    parser = _Parser(kind, name)
    policy = parser.parse(document)
    if policy is None or any(f.severity is Severity.ERROR for f in parser.findings):
        raise PolicyError(tuple(parser.findings))
    return policy


def validate_policy(document: object, *, kind: PolicyKind, name: str) -> tuple[Finding, ...]:
    """Every error and warning about `document`, in document order."""
    parser = _Parser(kind, name)
    parser.parse(document)
    return tuple(parser.findings)


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


class _Parser:
    def __init__(self, kind: PolicyKind, name: str) -> None:
        self.kind = kind
        self.name = name
        self.findings: list[Finding] = []
        self.variables = False

    def error(self, pointer: str, message: str) -> None:
        self.findings.append(Finding(Severity.ERROR, self.name, pointer, message))

    def warn(self, pointer: str, message: str) -> None:
        self.findings.append(Finding(Severity.WARNING, self.name, pointer, message))

    # -- document ---------------------------------------------------------------------------

    def parse(self, document: object) -> Policy | None:
        if not isinstance(document, dict):
            self.error("", f"a policy must be a JSON object, got {_describe(document)}")
            return None
        self.check_duplicates(document, "")
        for key in document:
            if key not in _TOP_KEYS:
                self.error(f"/{escape_pointer(key)}", f"unknown element `{key}`")
        version = self.parse_version(document)
        self.variables = version == VARIABLES_VERSION
        policy_id = self.optional_string(document, "Id", "")
        statements = self.parse_statements(document)
        self.check_size(document)
        self.check_sids(statements)
        return Policy(self.name, self.kind, version, policy_id, tuple(statements))

    def check_duplicates(self, node: dict[str, Any], pointer: str) -> None:
        for key in getattr(node, "duplicates", ()):
            self.error(f"{pointer}/{escape_pointer(key)}", f"duplicate key `{key}`")

    def parse_version(self, document: dict[str, Any]) -> str | None:
        if "Version" not in document:
            self.warn("", "missing `Version`: policy variables are not recognised")
            if self.kind is PolicyKind.RCP:
                self.error("", "a resource control policy must have `Version` `2012-10-17`")
            return None
        version = document["Version"]
        if version is None:
            self.error("/Version", "must not be null")
            return None
        if not isinstance(version, str):
            self.error("/Version", f"must be a string, got {_describe(version)}")
            return None
        if version not in VERSIONS:
            self.error("/Version", f"invalid version `{version}`: use `2012-10-17`")
            return None
        if self.kind is PolicyKind.RCP and version != VARIABLES_VERSION:
            self.error("/Version", "a resource control policy must have `Version` `2012-10-17`")
        return version

    def optional_string(self, node: dict[str, Any], key: str, pointer: str) -> str | None:
        if key not in node:
            return None
        value = node[key]
        if not isinstance(value, str):
            detail = (
                "must not be null" if value is None else f"must be a string, got {_describe(value)}"
            )
            self.error(f"{pointer}/{key}", detail)
            return None
        return value

    def parse_statements(self, document: dict[str, Any]) -> list[Statement]:
        if "Statement" not in document:
            self.error("", "missing `Statement`")
            return []
        raw = document["Statement"]
        if isinstance(raw, dict):
            items: list[tuple[str, object]] = [("/Statement", raw)]
        elif isinstance(raw, list):
            items = [(f"/Statement/{i}", item) for i, item in enumerate(raw)]
        else:
            detail = (
                "must not be null"
                if raw is None
                else f"must be an object or a list, got {_describe(raw)}"
            )
            self.error("/Statement", detail)
            return []
        if not items:
            # IAM: "A JSON policy must include a statement"; every policy type refuses `[]`
            self.error("/Statement", "must hold at least one statement")
            return []
        statements = []
        for index, (pointer, item) in enumerate(items):
            statement = self.parse_statement(index, pointer, item)
            if statement is not None:
                statements.append(statement)
        return statements

    def check_size(self, document: dict[str, Any]) -> None:
        compact = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
        limit = SIZE_LIMITS[self.kind]
        if len(compact) > limit:
            self.error(
                "",
                f"policy is {len(compact)} characters without whitespace; "
                f"a {self.kind} policy may have at most {limit}",
            )
        if self.kind in (PolicyKind.IDENTITY, PolicyKind.BOUNDARY, PolicyKind.SESSION):
            bad = _non_iam_characters(document, compact)
            if bad:
                shown = ", ".join(f"U+{ord(c):04X}" for c in bad[:5])
                self.error(
                    "", f"IAM policies may hold only TAB, LF, CR and U+0020-U+00FF, found {shown}"
                )

    def check_sids(self, statements: list[Statement]) -> None:
        seen: set[str] = set()
        strict = self.kind is not PolicyKind.REPOSITORY
        for statement in statements:
            sid = statement.sid
            if sid is None:
                continue
            pointer = f"/Statement/{statement.index}/Sid"
            if sid in seen:
                # ECR's own examples repeat Sids in resource policies: only IAM insists
                (self.error if strict else self.warn)(pointer, f"duplicate Sid `{sid}`")
            seen.add(sid)

    # -- statement --------------------------------------------------------------------------

    def parse_statement(self, index: int, pointer: str, raw: object) -> Statement | None:
        if not isinstance(raw, dict):
            self.error(pointer, f"must be an object, got {_describe(raw)}")
            return None
        self.check_duplicates(raw, pointer)
        for key, value in raw.items():
            if key not in _STATEMENT_KEYS:
                self.error(f"{pointer}/{escape_pointer(key)}", f"unknown element `{key}`")
            elif value is None:
                self.error(f"{pointer}/{key}", "must not be null")
        present = {key: value for key, value in raw.items() if value is not None}
        sid = self.parse_sid(present, pointer)
        effect = self.parse_effect(present, pointer)
        actions, not_action = self.parse_actions(present, pointer)
        resources, not_resource = self.parse_resources(present, pointer)
        principals, not_principal = self.parse_principals(present, pointer, effect)
        conditions = self.parse_conditions(present, pointer)
        if self.kind is PolicyKind.RCP:
            self.check_rcp_statement(present, pointer, effect, actions)
        if effect is None or actions is None:
            return None
        return Statement(
            index,
            sid,
            effect,
            actions,
            not_action,
            resources,
            not_resource,
            principals,
            not_principal,
            conditions,
        )

    def parse_sid(self, raw: dict[str, Any], pointer: str) -> str | None:
        sid = self.optional_string(raw, "Sid", pointer)
        iam_rules = self.kind is not PolicyKind.REPOSITORY
        if sid is not None and iam_rules and not (sid.isascii() and (sid.isalnum() or not sid)):
            self.error(f"{pointer}/Sid", f"unsupported Sid `{sid}`: use only letters and digits")
        return sid

    def parse_effect(self, raw: dict[str, Any], pointer: str) -> Effect | None:
        if "Effect" not in raw:
            self.error(pointer, "missing `Effect`")
            return None
        effect = raw["Effect"]
        if effect not in ("Allow", "Deny"):
            shown = f"`{effect}`" if isinstance(effect, str) else _describe(effect)
            self.error(f"{pointer}/Effect", f"must be Allow or Deny, got {shown}")
            return None
        return Effect(effect)

    def exclusive(self, raw: dict[str, Any], pointer: str, key: str) -> str | None:
        """Which of `key` / `NotKEY` is present; an error if both are."""
        positive, negative = key in raw, f"Not{key}" in raw
        if positive and negative:
            self.error(pointer, f"`{key}` and `Not{key}` may not both be given")
        if positive:
            return key
        return f"Not{key}" if negative else None

    def string_list(self, value: object, pointer: str) -> list[tuple[str, str]] | None:
        """(pointer, text) for a string or a list of strings; an error otherwise."""
        if isinstance(value, str):
            return [(pointer, value)]
        if isinstance(value, list):
            bad = [i for i, item in enumerate(value) if not isinstance(item, str)]
            if not bad:
                return [(f"{pointer}/{i}", item) for i, item in enumerate(value)]
            self.error(f"{pointer}/{bad[0]}", f"must be a string, got {_describe(value[bad[0]])}")
            return None
        self.error(pointer, f"must be a string or list of strings, got {_describe(value)}")
        return None

    def parse_actions(
        self, raw: dict[str, Any], pointer: str
    ) -> tuple[tuple[str, ...] | None, bool]:
        key = self.exclusive(raw, pointer, "Action")
        if key is None:
            self.error(pointer, "missing `Action` or `NotAction`")
            return None, False
        entries = self.string_list(raw[key], f"{pointer}/{key}")
        if entries is None:
            return None, False
        for entry_pointer, text in entries:
            self.check_action(entry_pointer, text)
        return tuple(text for _, text in entries), key == "NotAction"

    def check_action(self, pointer: str, text: str) -> None:
        if text == "*":
            return
        prefix, colon, name = text.partition(":")
        if not colon or not prefix:
            self.error(pointer, f"action `{text}` must be `*` or `service:action`")
        elif not set(prefix) <= _PREFIX_CHARACTERS:
            self.error(pointer, f"service prefix of `{text}` may hold only letters, digits and `-`")
        elif set(name) & _SEPARATORS:
            # an ARN or path pasted into Action, not an action name: one colon only (§2.4)
            self.error(pointer, f"action names contain only letters, digits, * and ?, got `{text}`")
        elif not name:
            self.warn(pointer, f"action `{text}` has no name and matches nothing")
        elif not is_action_name(name):
            # IAM: an unknown action is accepted and matches nothing ("Invalid action"); a fleet
            # exported from AWS may hold one, such as `s3:GetObject,PutObject` (§2.4)
            self.warn(
                pointer, f"action `{text}` holds characters no action has and matches nothing"
            )
        elif prefix.lower() == ECR_PREFIX and not matches_ecr_action(name):
            self.warn(pointer, f"action `{text}` names no ECR action")

    def parse_resources(
        self, raw: dict[str, Any], pointer: str
    ) -> tuple[tuple[str, ...] | None, bool]:
        key = self.exclusive(raw, pointer, "Resource")
        if key is None:
            if self.kind is not PolicyKind.REPOSITORY:
                self.error(
                    pointer, f"`Resource` or `NotResource` is required in a {self.kind} policy"
                )
            return None, False
        entries = self.string_list(raw[key], f"{pointer}/{key}")
        if entries is None:
            return None, False
        for entry_pointer, text in entries:
            self.check_resource(entry_pointer, text)
        return tuple(text for _, text in entries), key == "NotResource"

    def check_resource(self, pointer: str, text: str) -> None:
        if text == "*":
            return
        parts = split_arn_pattern(text)
        if parts is None or parts[0] != "arn":
            self.error(
                pointer,
                f"resource `{text}` must be `*` or an ARN "
                "`arn:partition:service:region:account:resource`",
            )
            return
        service = parts[2]
        if not service or "*" in service or "?" in service:
            self.error(
                pointer,
                f"the service part of resource `{text}` must be written out, without wildcards",
            )
        if any("${" in part for part in parts[:5]) and self.variables:
            self.warn(pointer, f"variables in `{text}` are literal text outside the resource part")
        template = self.check_template(pointer, parts[5]) if self.variables else None
        if has_wildcard_type(template or literal_template(parts[5])):
            self.warn(
                pointer,
                f"resource `{text}` has a wildcard in its resource type "
                "(write `repository/`): it matches nothing",
            )

    def check_template(self, pointer: str, text: str) -> Template | None:
        try:
            return parse_template(text)
        except VariableSyntaxError as problem:
            self.error(pointer, str(problem))
            return None

    def parse_principals(
        self, raw: dict[str, Any], pointer: str, effect: Effect | None
    ) -> tuple[tuple[PrincipalEntry, ...] | None, bool]:
        key = self.exclusive(raw, pointer, "Principal")
        if not self.kind.is_resource_based:
            if key is not None:
                self.error(f"{pointer}/{key}", f"a {self.kind} policy may not name a principal")
            return None, False
        if key is None:
            self.error(
                pointer, f"`Principal` or `NotPrincipal` is required in a {self.kind} policy"
            )
            return None, False
        if key == "NotPrincipal" and effect is Effect.ALLOW:
            self.error(f"{pointer}/NotPrincipal", "`NotPrincipal` is supported only with `Deny`")
        entries = self.parse_principal_value(raw[key], f"{pointer}/{key}")
        if entries is not None and not entries:
            self.warn(f"{pointer}/{key}", "names no principal: the statement never applies")
        return entries, key == "NotPrincipal"

    def parse_principal_value(
        self, value: object, pointer: str
    ) -> tuple[PrincipalEntry, ...] | None:
        if value == "*":
            return (PrincipalEntry(EntryKind.WILDCARD, "*"),)
        if not isinstance(value, dict):
            self.error(pointer, f"must be `*` or an object, got {_describe(value)}")
            return None
        self.check_duplicates(value, pointer)
        found: list[PrincipalEntry] = []
        valid = True
        for key, item in value.items():
            item_pointer = f"{pointer}/{escape_pointer(key)}"
            if key not in _PRINCIPAL_KEYS:
                self.error(
                    item_pointer,
                    f"invalid principal key `{key}`: use AWS, Service, Federated or CanonicalUser",
                )
                valid = False
                continue
            entries = self.string_list(item, item_pointer)
            if entries is None:
                valid = False
                continue
            for entry_pointer, text in entries:
                try:
                    found.append(parse_principal_entry(key, text))
                except ValueError as problem:
                    self.error(entry_pointer, str(problem))
                    valid = False
        return tuple(found) if valid else None

    def check_rcp_statement(
        self,
        raw: dict[str, Any],
        pointer: str,
        effect: Effect | None,
        actions: tuple[str, ...] | None,
    ) -> None:
        if effect is Effect.ALLOW:
            self.error(f"{pointer}/Effect", "a customer RCP statement must be Deny")
        for element in ("NotAction", "NotPrincipal"):
            if element in raw:
                self.error(
                    f"{pointer}/{element}", f"a resource control policy may not use `{element}`"
                )
        if actions is not None and "*" in actions:
            self.error(
                f"{pointer}/Action", "a resource control policy may not use the bare action `*`"
            )
        principal = raw.get("Principal")
        if principal is not None and principal not in ("*", {"AWS": "*"}):
            self.error(
                f"{pointer}/Principal", "a resource control policy's `Principal` must be `*`"
            )

    # -- conditions -------------------------------------------------------------------------

    def parse_conditions(self, raw: dict[str, Any], pointer: str) -> tuple[ConditionClause, ...]:
        if "Condition" not in raw:
            return ()
        block = raw["Condition"]
        pointer = f"{pointer}/Condition"
        if not isinstance(block, dict):
            self.error(pointer, f"must be an object, got {_describe(block)}")
            return ()
        self.check_duplicates(block, pointer)
        clauses: list[ConditionClause] = []
        for spelled, keys in block.items():
            clauses.extend(
                self.parse_operator_block(spelled, keys, f"{pointer}/{escape_pointer(spelled)}")
            )
        return tuple(clauses)

    def parse_operator_block(
        self, spelled: str, keys: object, pointer: str
    ) -> list[ConditionClause]:
        parsed = self.parse_operator_name(spelled, pointer)
        if not isinstance(keys, dict):
            self.error(pointer, f"must be an object of condition keys, got {_describe(keys)}")
            return []
        self.check_duplicates(keys, pointer)
        folded: dict[str, str] = {}
        clauses = []
        for key, raw_values in keys.items():
            key_pointer = f"{pointer}/{escape_pointer(key)}"
            if key.lower() in folded:
                self.error(
                    key_pointer,
                    f"duplicate keys with different case: `{folded[key.lower()]}` and `{key}`",
                )
            folded[key.lower()] = key
            values = self.parse_condition_values(raw_values, key_pointer)
            if parsed is None or values is None:
                continue
            operator, qualifier, if_exists = parsed
            self.check_condition_values(operator, values, key_pointer)
            clauses.append(ConditionClause(operator, qualifier, if_exists, key, values, spelled))
        return clauses

    def parse_operator_name(
        self, spelled: str, pointer: str
    ) -> tuple[str, SetQualifier | None, bool] | None:
        rest = spelled
        qualifier = None
        for prefix, value in _QUALIFIERS.items():
            if rest.lower().startswith(prefix):
                qualifier, rest = value, rest[len(prefix) :]
                break  # one qualifier at most: a second one leaves an unknown operator name
        if_exists = rest.lower().endswith(_IF_EXISTS) and rest.lower() != _IF_EXISTS
        base = rest[: -len(_IF_EXISTS)] if if_exists else rest
        canonical = lookup_operator(base)
        if canonical is None:
            self.error(pointer, f"unknown condition operator `{spelled}`")
            return None
        if canonical == NULL and if_exists:
            self.error(pointer, "`Null` cannot take `IfExists`")
            return None
        if canonical == NULL and qualifier is not None:
            self.warn(
                pointer,
                f"`{spelled}`: a set qualifier on `Null` makes it always "
                f"{str(qualifier is SetQualifier.FOR_ALL_VALUES).lower()}",
            )
        written = (
            (f"{qualifier}:" if qualifier else "") + canonical + ("IfExists" if if_exists else "")
        )
        if spelled != written:
            self.warn(pointer, f"operator `{spelled}` is written `{written}` by AWS")
        return canonical, qualifier, if_exists

    def parse_condition_values(self, raw: object, pointer: str) -> tuple[str, ...] | None:
        items = raw if isinstance(raw, list) else [raw]
        texts = []
        for index, item in enumerate(items):
            item_pointer = f"{pointer}/{index}" if isinstance(raw, list) else pointer
            if isinstance(item, bool):
                texts.append("true" if item else "false")
            elif isinstance(item, int | float):
                texts.append(json.dumps(item))
            elif isinstance(item, str):
                texts.append(item)
            else:
                self.error(
                    item_pointer,
                    f"condition values must be strings, numbers or booleans, got {_describe(item)}",
                )
                return None
        if not texts:
            self.warn(pointer, "an empty list of values")
        return tuple(texts)

    def check_condition_values(self, operator: str, values: tuple[str, ...], pointer: str) -> None:
        if operator == NULL:
            for value in values:
                if value.lower() not in ("true", "false"):
                    self.error(pointer, f"`Null` takes `true` or `false`, got `{value}`")
            return
        spec = OPERATORS[operator]
        for value in values:
            if spec.variables and self.variables and "${" in value:
                self.check_template(pointer, value)
                continue
            if operator == BOOL and "${" in value:
                self.warn(
                    pointer,
                    f"`Bool` takes no policy variables: `{value}` stays text and never matches",
                )
                continue
            if spec.policy_value((Chunk(value, True),)) is None:
                self.warn(pointer, f"`{value}` is not {spec.family}: it never matches")


def _non_iam_characters(document: object, compact: str) -> list[str]:
    """Characters IAM refuses in identity policies, sorted (none, nearly always)."""
    # json.dumps escapes control characters, so ASCII output without such escapes is clean
    if compact.isascii() and not any(e in compact for e in ("\\u00", "\\b", "\\f")):
        return []
    found: set[str] = set()
    pending = [document]
    while pending:
        node = pending.pop()
        if isinstance(node, str):
            found.update(c for c in node if not (c in _IAM_CHARACTERS or " " <= c <= "\u00ff"))
        elif isinstance(node, dict):
            pending.extend(node.keys())
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return sorted(found)
