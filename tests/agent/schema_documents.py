"""JSON documents inside a schema's limits, and every single step past one of them.

Used to compare two decoders of one message (the server's pydantic model and the agent's
msgspec struct). `documents` draws valid documents for a pydantic `model_json_schema()`;
`single_steps` walks one of them and yields each variant that changes exactly one thing to
sit at or just past a limit the schema states (one character, item, key or unit too many or
too few, a required field left out, an unknown field added). One change at a time is what
shows two definitions that drifted apart; several at once would hide each other. Types are
never wrong on purpose: lax type coercion is not compared here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

Schema = dict[str, Any]
Put = Callable[[Any], Any]
# msgspec and pydantic both read 64-bit integers; nobody sends more.
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
# Collections in drawn documents stay this short; long ones repeat one item.
SHORT = 3
_QUANTIFIER = re.compile(r"\{(\d+),(\d+)\}")
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
    "array": (list,),
    "object": (dict,),
}


def json_values(depth: int = 2) -> st.SearchStrategy[Any]:
    """Small arbitrary JSON (for `dict[str, Any]` fields)."""
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-1000, 1000),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=8),
    )
    if depth == 0:
        return leaves
    inner = json_values(depth - 1)
    return st.one_of(
        leaves,
        st.lists(inner, max_size=SHORT),
        st.dictionaries(st.text(max_size=6), inner, max_size=SHORT),
    )


def timestamps() -> st.SearchStrategy[str]:
    """RFC 3339 text, naive or with a whole-minute offset, as both decoders read it."""
    offsets = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
    zones = st.one_of(st.none(), st.just(UTC), offsets)
    moments = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9998, 12, 30))
    return st.builds(lambda d, z: d.replace(tzinfo=z).isoformat(), moments, zones)


def stretch(text: str, size: int) -> str:
    """`text` repeated and cut to `size` characters (a valid string usually stays valid)."""
    return (text * (size // len(text) + 1))[:size] if text else "a" * size


def limits(node: Schema) -> tuple[Any, Any, bool, bool]:
    """Lower and upper bound of a number, and whether each is exclusive."""
    low_open = node.get("exclusiveMinimum", node.get("gt"))
    high_open = node.get("exclusiveMaximum", node.get("lt"))
    low = node.get("minimum", node.get("ge")) if low_open is None else low_open
    high = node.get("maximum", node.get("le")) if high_open is None else high_open
    return low, high, low_open is not None, high_open is not None


def entries(node: Schema) -> tuple[Schema, Any]:
    """The schema of a mapping's keys, and of its values (True: anything)."""
    for pattern, values in node.get("patternProperties", {}).items():
        return {"type": "string", "pattern": pattern}, values
    return node.get("propertyNames", {"type": "string"}), node.get("additionalProperties", True)


def documents(schema: Schema) -> st.SearchStrategy[Any]:
    """Valid documents for a pydantic `model_json_schema()`."""
    return Documents(schema.get("$defs", {})).strategy(schema)


def single_steps(schema: Schema, document: Any) -> Iterator[tuple[str, Any]]:
    """(where, variant) for every one-change variant of `document` at or past a limit."""
    yield from Steps(schema.get("$defs", {})).walk(schema, document, "$", lambda v: v)


class Documents:
    """Turns schema nodes into strategies for valid values, resolving `$ref`."""

    def __init__(self, defs: dict[str, Schema]) -> None:
        self.defs = defs

    def strategy(self, node: Schema) -> st.SearchStrategy[Any]:
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[1]
            return st.deferred(lambda: self.strategy(self.defs[name]))
        if "anyOf" in node:
            return st.one_of(*(self.strategy(option) for option in node["anyOf"]))
        if "enum" in node or "const" in node:
            return st.sampled_from(node.get("enum", [node.get("const")]))
        kind = node.get("type")
        if kind == "string":
            return timestamps() if node.get("format") == "date-time" else self.string(node)
        if kind in ("integer", "number"):
            return self.number(node, whole=kind == "integer")
        if kind == "boolean":
            return st.booleans()
        if kind == "null":
            return st.none()
        if kind == "array":
            return self.array(node)
        if kind == "object":
            return self.record(node) if "properties" in node else self.mapping(node)
        return json_values()

    def string(self, node: Schema) -> st.SearchStrategy[str]:
        low, high = node.get("minLength", 0), node.get("maxLength")
        pattern: str | None = node.get("pattern")
        base: st.SearchStrategy[str] = (
            st.from_regex(pattern, fullmatch=True) if pattern else st.text(max_size=8)
        )
        if high is not None:
            ends = [n for n in (low, high) if n > 0]
            sized = st.tuples(base.filter(bool), st.sampled_from(ends)).map(lambda p: stretch(*p))
            base = st.one_of(base, sized) if ends else base
        top = high if high is not None else math.inf
        return base.filter(lambda s: low <= len(s) <= top)

    def number(self, node: Schema, *, whole: bool) -> st.SearchStrategy[Any]:
        low, high, low_open, high_open = limits(node)
        if whole:
            first = INT_MIN if low is None else int(low) + low_open
            last = INT_MAX if high is None else int(high) - high_open
            return st.integers(first, last)
        return st.floats(
            min_value=low,
            max_value=high,
            exclude_min=low_open,
            exclude_max=high_open,
            allow_nan=False,
            allow_infinity=False,
        )

    def array(self, node: Schema) -> st.SearchStrategy[list[Any]]:
        # Short lists only: `single_steps` tries the length limits themselves.
        item = self.strategy(node.get("items", {}))
        low = node.get("minItems", 0)
        return st.lists(item, min_size=low, max_size=max(low, SHORT))

    def mapping(self, node: Schema) -> st.SearchStrategy[dict[str, Any]]:
        keys, values = entries(node)
        value = self.strategy(values) if isinstance(values, dict) else json_values()
        key = self.string(keys)
        return st.dictionaries(key, value, max_size=SHORT)

    def record(self, node: Schema) -> st.SearchStrategy[dict[str, Any]]:
        required = set(node.get("required", []))
        fields = {name: self.strategy(sub) for name, sub in node["properties"].items()}

        @st.composite
        def build(draw: st.DrawFn) -> dict[str, Any]:
            return {
                name: draw(field)
                for name, field in fields.items()
                if name in required or draw(st.booleans())
            }

        return build()


class Steps:
    """Walks a valid document beside its schema, yielding one-change variants."""

    def __init__(self, defs: dict[str, Schema]) -> None:
        self.defs = defs

    def walk(self, node: Schema, value: Any, where: str, put: Put) -> Iterator[tuple[str, Any]]:
        if "$ref" in node:
            node = self.defs[node["$ref"].rsplit("/", 1)[1]]
        if "anyOf" in node:
            matching = [n for n in node["anyOf"] if self._fits(n, value)]
            if matching:
                yield from self.walk(matching[0], value, where, put)
            return
        if "enum" in node:
            yield where, put(f"{value}x")
            return
        kind = node.get("type")
        if kind == "string" and node.get("format") != "date-time":
            yield from ((where, put(text)) for text in self._strings(node, value))
        elif kind in ("integer", "number"):
            yield from ((where, put(number)) for number in self._numbers(node, kind == "integer"))
        elif kind == "array":
            yield from self._array(node, value, where, put)
        elif kind == "object" and "properties" in node:
            yield from self._record(node, value, where, put)
        elif kind == "object":
            yield from self._mapping(node, value, where, put)

    def _fits(self, node: Schema, value: Any) -> bool:
        if "$ref" in node:
            return isinstance(value, dict)
        kinds = _JSON_TYPES.get(node.get("type", ""), ())
        return isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)

    def _strings(self, node: Schema, value: str) -> Iterator[str]:
        low, high = node.get("minLength", 0), node.get("maxLength")
        for size in (low - 1, low, *((high, high + 1) if high is not None else ())):
            if size >= 0:
                yield stretch(value, size)
        # A repetition bound inside the pattern ({1,57}) is a limit too.
        for _, top in _QUANTIFIER.findall(node.get("pattern", "")):
            if value:
                yield from (value + value[-1] * (int(top) - n) for n in (0, 1))

    def _numbers(self, node: Schema, whole: bool) -> Iterator[Any]:
        for bound in limits(node)[:2]:
            if bound is None:
                continue
            if whole:
                yield from (n for n in (bound - 1, bound, bound + 1) if INT_MIN <= n <= INT_MAX)
            else:
                yield from (
                    bound,
                    math.nextafter(bound, -math.inf),
                    math.nextafter(bound, math.inf),
                )

    def _array(
        self, node: Schema, value: list[Any], where: str, put: Put
    ) -> Iterator[tuple[str, Any]]:
        low, high = node.get("minItems", 0), node.get("maxItems")
        if value:
            for size in (low - 1, low, *((high, high + 1) if high is not None else ())):
                if size >= 0:
                    yield f"{where} ({size} items)", put([value[0]] * size)
            item = node.get("items", {})
            yield from self.walk(item, value[0], f"{where}[0]", lambda v: put([v, *value[1:]]))

    def _mapping(
        self, node: Schema, value: dict[str, Any], where: str, put: Put
    ) -> Iterator[tuple[str, Any]]:
        high = node.get("maxProperties")
        if not value:
            return
        keys, values = entries(node)
        first, rest = next(iter(value.items())), dict(list(value.items())[1:])
        if high is not None:
            for size in (high, high + 1):
                yield (
                    f"{where} ({size} keys)",
                    put({stretch(first[0], 1) + f"k{n}": first[1] for n in range(size)}),
                )
        for key in self._strings(keys, first[0]):
            yield f"{where} key", put({key: first[1], **rest})
        if isinstance(values, dict):
            yield from self.walk(
                values, first[1], f"{where}.{first[0]}", lambda v: put({**value, first[0]: v})
            )

    def _record(
        self, node: Schema, value: dict[str, Any], where: str, put: Put
    ) -> Iterator[tuple[str, Any]]:
        required = set(node.get("required", []))
        yield f"{where} + unknown field", put({**value, "added_later": 1})
        for name, field in value.items():
            if name in required:
                yield f"{where} - {name}", put({k: v for k, v in value.items() if k != name})
            child = node["properties"][name]
            yield from self.walk(child, field, f"{where}.{name}", self._setter(value, name, put))

    @staticmethod
    def _setter(value: dict[str, Any], name: str, put: Put) -> Put:
        return lambda v: put({**value, name: v})
