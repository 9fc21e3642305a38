"""Metadata filters in Chroma's ``where`` vocabulary: validated once, evaluated in Python.

A filter restricts a search to the documents whose metadata match it. The same predicate serves the
BM25 and the dense side: the retriever evaluates it over the document records once per request
(:func:`matches`) and both sides search only the allowed documents, so the two can never disagree.

Grammar (a JSON object)::

    filter     := {field: condition, ...} | {"$and": [filter, ...]} | {"$or": [filter, ...]}
    condition  := scalar                              (same as {"$eq": scalar})
                | {"$eq"|"$ne": scalar}
                | {"$in"|"$nin": [scalar, ...]}
                | {"$gt"|"$gte"|"$lt"|"$lte": number | ISO date}

Several fields (or several operators on one field) in one object must all hold. A number compares with
numbers, an ISO date (``2024-05-01`` or ``2024-05-01T12:00:00+09:00``; no zone means UTC) with metadata
values that are ISO dates. A list-valued field (e.g. ``tags``) matches ``$eq``/``$in`` when any element
does, and ``$ne``/``$nin`` when none does. A document without the field matches only ``$ne`` and ``$nin``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator

__all__ = [
    "MAX_CONDITIONS",
    "MAX_DEPTH",
    "MAX_LIST",
    "FilterError",
    "MetadataFilter",
    "check_filter",
    "filter_digest",
    "matches",
]

MAX_DEPTH = 6  # nesting of $and/$or
MAX_CONDITIONS = 64  # field conditions in one filter
MAX_LIST = 256  # values in one $in/$nin
MAX_FIELD_CHARS = 128

_EQUALITY = frozenset({"$eq", "$ne"})
_MEMBERSHIP = frozenset({"$in", "$nin"})
_RANGE = frozenset({"$gt", "$gte", "$lt", "$lte"})
_LOGICAL = frozenset({"$and", "$or"})
_OPERATORS = _EQUALITY | _MEMBERSHIP | _RANGE
Scalar = str | int | float | bool


class FilterError(ValueError):
    """A filter that does not follow the grammar; the message says where and why."""


def check_filter(value: dict[str, Any]) -> dict[str, Any]:
    """``value`` when it is a valid filter; raises :class:`FilterError` (a ValueError) otherwise."""
    count = [0]
    _check_object(value, "filter", 0, count)
    return value


# The pydantic field type: a wire model with this field answers 400 for an invalid filter.
MetadataFilter = Annotated[dict[str, Any], AfterValidator(check_filter)]


def _check_object(node: Any, where: str, depth: int, count: list[int]) -> None:
    if not isinstance(node, dict) or not node:
        raise FilterError(f"{where} must be a non-empty JSON object of field conditions, $and or $or.")
    if depth > MAX_DEPTH:
        raise FilterError(f"{where} nests $and/$or deeper than {MAX_DEPTH} levels.")
    for key, condition in node.items():
        if key in _LOGICAL:
            if not isinstance(condition, list) or not condition:
                raise FilterError(f"{where}.{key} must be a non-empty list of filters.")
            for i, part in enumerate(condition):
                _check_object(part, f"{where}.{key}[{i}]", depth + 1, count)
        elif key.startswith("$"):
            raise FilterError(f"Unknown operator '{key[:40]}' at {where}: use $and or $or here, or a field name.")
        else:
            _check_field(key, condition, where, count)


def _check_field(name: str, condition: Any, where: str, count: list[int]) -> None:
    if not name or len(name) > MAX_FIELD_CHARS:
        raise FilterError(f"Field names in {where} must have 1 to {MAX_FIELD_CHARS} characters.")
    at = f"{where}.{name}"
    if not isinstance(condition, dict):
        condition = {"$eq": condition}
    if not condition:
        raise FilterError(f"{at} must name an operator, e.g. {{\"$eq\": ...}}.")
    for op, operand in condition.items():
        count[0] += 1
        if count[0] > MAX_CONDITIONS:
            raise FilterError(f"The filter has more than {MAX_CONDITIONS} conditions.")
        _check_operand(op, operand, f"{at}.{op}" if op.startswith("$") else at)


def _check_operand(op: str, operand: Any, at: str) -> None:
    if op not in _OPERATORS:
        allowed = ", ".join(sorted(_OPERATORS))
        raise FilterError(f"Unknown operator '{str(op)[:40]}' at {at}: use one of {allowed}.")
    if op in _EQUALITY and not _is_scalar(operand):
        raise FilterError(f"{at} takes a string, number or boolean.")
    if op in _MEMBERSHIP:
        if not isinstance(operand, list) or not operand or len(operand) > MAX_LIST:
            raise FilterError(f"{at} takes a list of 1 to {MAX_LIST} strings, numbers or booleans.")
        if not all(_is_scalar(v) for v in operand):
            raise FilterError(f"{at} takes a list of strings, numbers or booleans.")
    if op in _RANGE and not _is_number(operand) and _as_date(operand) is None:
        raise FilterError(f"{at} takes a number or an ISO date such as \"2024-05-01\".")


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _as_date(value: Any) -> datetime | None:
    """An ISO date or date-time as an aware datetime (no zone: UTC); None if ``value`` is not one."""
    if not isinstance(value, str) or not 8 <= len(value) <= 40 or not value[:4].isdigit():
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        try:
            day = date.fromisoformat(value)
        except ValueError:
            return None
        parsed = datetime(day.year, day.month, day.day)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def filter_digest(value: Mapping[str, Any] | None) -> str:
    """A stable id of a filter (key order does not matter); empty for no filter."""
    if not value:
        return ""
    canonical = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]


def matches(value: Mapping[str, Any], metadata: Mapping[str, Any]) -> bool:
    """Whether a document with ``metadata`` passes the (validated) filter ``value``."""
    for key, condition in value.items():
        if key == "$and":
            if not all(matches(part, metadata) for part in condition):
                return False
        elif key == "$or":
            if not any(matches(part, metadata) for part in condition):
                return False
        else:
            ops = condition if isinstance(condition, dict) else {"$eq": condition}
            if not all(_holds(op, operand, metadata.get(key)) for op, operand in ops.items()):
                return False
    return True


def _holds(op: str, operand: Any, field: Any) -> bool:
    values = field if isinstance(field, list) else ([] if field is None else [field])
    if op == "$eq":
        return any(_equal(v, operand) for v in values)
    if op == "$ne":
        return not any(_equal(v, operand) for v in values)
    if op == "$in":
        return any(_equal(v, o) for v in values for o in operand)
    if op == "$nin":
        return not any(_equal(v, o) for v in values for o in operand)
    return any(_in_range(op, v, operand) for v in values)


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    return type(a) is type(b) and bool(a == b)


def _in_range(op: str, value: Any, bound: Any) -> bool:
    if _is_number(bound):
        if not _is_number(value):
            return False
        left, right = float(value), float(bound)
        return _compare(op, left, right)
    value_date, bound_date = _as_date(value), _as_date(bound)
    if value_date is None or bound_date is None:
        return False
    return _compare(op, value_date.timestamp(), bound_date.timestamp())


def _compare(op: str, left: float, right: float) -> bool:
    return {"$gt": left > right, "$gte": left >= right, "$lt": left < right, "$lte": left <= right}[op]
