"""Label selectors: Kubernetes-style expressions such as `env=prod,site in (oslo,bergen)`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import NoReturn

from signalbeam.domain.errors import InvalidInput

MAX_LABEL_LENGTH = 63

_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_KEY_RE = re.compile(rf"(?:{_PART}/)?{_PART}")
# The same rules as anchored patterns, for the API's schema (which also enforces them).
LABEL_KEY_PATTERN = rf"^(?:{_PART}/)?{_PART}$"
LABEL_VALUE_PATTERN = rf"^{_PART}$"
# The whole grammar as one pattern, for the API's schema; `parse_selector` stays the check, with
# messages that point at the position. Keys with a prefix are bounded at 31 + 31 here, so every
# key the pattern admits is within MAX_LABEL_LENGTH.
_WORD = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?"
_HALF = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,29}[A-Za-z0-9])?"
_KEY = rf"(?:{_HALF}/{_HALF}|{_WORD})"
_VALUES = rf"\(\s*{_WORD}(?:\s*,\s*{_WORD})*\s*\)"
_TERM = rf"(?:!\s*{_KEY}|{_KEY}(?:\s*(?:==|!=|=)\s*{_WORD}|\s+(?:in|notin)\s*{_VALUES})?)"
SELECTOR_PATTERN = rf"^\s*{_TERM}(?:\s*,\s*{_TERM})*\s*$"
# Blank text is a selector too: it selects every device.
BLANK_OR_SELECTOR_PATTERN = rf"^\s*(?:{_TERM}(?:\s*,\s*{_TERM})*\s*)?$"
# Values follow the key rule without the prefix, as in Kubernetes: loosening it later is safe,
# tightening it would strand labels that are already stored.
_VALUE_RE = re.compile(_PART)
# Words take every character a key may hold, so a bad key or value is reported by the rule it
# breaks rather than as a stray character; "==" and "!=" come first so they are not split.
_TOKEN_RE = re.compile(r"\s*([A-Za-z0-9._/-]+|==|!=|[=!(),])")
_KEY_RULE = (
    'must start and end with a letter or digit and contain only letters, digits, ".", "_" '
    'or "-", plus at most one "/" after a prefix'
)
_VALUE_RULE = (
    'must start and end with a letter or digit and contain only letters, digits, ".", "_" or "-"'
)

_FULL_EXAMPLE = "env=prod,site in (oslo,bergen),!decommissioned"
_EQ_EXAMPLE = "env=prod"
_LIST_EXAMPLE = "site in (oslo,bergen)"
_ABSENT_EXAMPLE = "!decommissioned"


class Operator(StrEnum):
    """How a requirement compares a device's label with its values."""

    EQ = "="
    NE = "!="
    IN = "in"
    NOTIN = "notin"
    EXISTS = "exists"
    NOT_EXISTS = "!"


# Operators that compare against values; the rest only look at whether the key is present.
_ONE_VALUE = frozenset({Operator.EQ, Operator.NE})
_MANY_VALUES = frozenset({Operator.IN, Operator.NOTIN})


def _problem(kind: str, text: str, pattern: re.Pattern[str], rule: str) -> str | None:
    if not text:
        return f"{kind} is empty"
    if pattern.fullmatch(text) is None:
        return f'{kind} "{text}" {rule}'
    if len(text) > MAX_LABEL_LENGTH:
        return f'{kind} "{text}" is {len(text)} characters; at most {MAX_LABEL_LENGTH} are allowed'
    return None


def _key_problem(key: str) -> str | None:
    return _problem("key", key, _KEY_RE, _KEY_RULE)


def _value_problem(value: str) -> str | None:
    return _problem("value", value, _VALUE_RE, _VALUE_RULE)


def _value_count_problem(op: Operator, count: int) -> str | None:
    if op in _MANY_VALUES:
        wanted, ok = "at least one value", count >= 1
    elif op in _ONE_VALUE:
        wanted, ok = "exactly one value", count == 1
    else:
        wanted, ok = "no values", count == 0
    return None if ok else f'operator "{op}" takes {wanted}, got {count}'


def validate_label_key(key: str) -> None:
    """Raise InvalidInput unless `key` is a usable label key."""
    if (problem := _key_problem(key)) is not None:
        raise InvalidInput(f"label {problem}", field="labels")


def validate_label_value(value: str) -> None:
    """Raise InvalidInput unless `value` is a usable label value."""
    if (problem := _value_problem(value)) is not None:
        raise InvalidInput(f"label {problem}", field="labels")


def parse_label(text: str) -> tuple[str, str]:
    """Split `key=value` into a validated (key, value) pair."""
    key, equals, value = (part.strip() for part in text.partition("="))
    if not equals:
        raise InvalidInput(
            f'label "{text}" must look like key=value, e.g. site=oslo', field="labels"
        )
    for problem in (_key_problem(key), _value_problem(value)):
        if problem is not None:
            raise InvalidInput(f'label "{text}" is not valid: {problem}', field="labels")
    return key, value


@dataclass(frozen=True)
class Requirement:
    """One condition on one label key; a selector ANDs several of these."""

    key: str
    op: Operator
    values: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Validating here keeps every Requirement printable as text that parses back to itself.
        count_problem = _value_count_problem(self.op, len(self.values))
        for problem in (count_problem, _key_problem(self.key), *map(_value_problem, self.values)):
            if problem is not None:
                raise InvalidInput(problem, field="selector")

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether a device with these labels meets this requirement."""
        actual = labels.get(self.key)
        # As in Kubernetes, "!=" and "notin" also match devices that lack the key.
        match self.op:
            case Operator.EQ | Operator.IN:
                return actual in self.values
            case Operator.NE | Operator.NOTIN:
                return actual not in self.values
            case Operator.EXISTS:
                return actual is not None
            case Operator.NOT_EXISTS:
                return actual is None

    def __str__(self) -> str:
        match self.op:
            case Operator.EXISTS:
                return self.key
            case Operator.NOT_EXISTS:
                return f"!{self.key}"
            case Operator.IN | Operator.NOTIN:
                return f"{self.key} {self.op} ({','.join(self.values)})"
            case Operator.EQ | Operator.NE:
                return f"{self.key}{self.op}{self.values[0]}"


@dataclass(frozen=True)
class Selector:
    """Requirements that must all hold; no requirements matches every device."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether a device with these labels is selected."""
        return all(requirement.matches(labels) for requirement in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(requirement) for requirement in self.requirements)


@dataclass(frozen=True)
class _Token:
    text: str
    pos: int

    @property
    def is_word(self) -> bool:
        return self.text != "" and self.text[0] not in "=!(),"

    def describe(self) -> str:
        return f'"{self.text}"' if self.text else "the end of the selector"


def _tokenize(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while (match := _TOKEN_RE.match(source, pos)) is not None:
        tokens.append(_Token(match.group(1), match.start(1)))
        pos = match.end()
    rest = source[pos:]
    if rest.strip():
        bad = pos + len(rest) - len(rest.lstrip())
        _fail(source, bad, f'unexpected character "{source[bad]}"', _FULL_EXAMPLE)
    # An empty token marks the end, so the parser never has to check for running out.
    tokens.append(_Token("", len(source)))
    return tokens


def _fail(source: str, pos: int, problem: str, example: str) -> NoReturn:
    raise InvalidInput(
        f'selector "{source}" is not valid at position {pos}: {problem}; expected e.g. {example}',
        field="selector",
    )


class _Parser:
    """Recursive descent over the token list; each method reads one part of the grammar."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = _tokenize(source)
        self.index = 0

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def take(self) -> _Token:
        token = self.tokens[self.index]
        self.index = min(self.index + 1, len(self.tokens) - 1)
        return token

    def fail(self, token: _Token, problem: str, example: str = _FULL_EXAMPLE) -> NoReturn:
        _fail(self.source, token.pos, problem, example)

    def expected(self, token: _Token, wanted: str, example: str = _FULL_EXAMPLE) -> NoReturn:
        self.fail(token, f"expected {wanted}, found {token.describe()}", example)

    def selector(self) -> Selector:
        if self.peek().text == "":
            return Selector()
        requirements = [self.requirement()]
        while self.take().text == ",":
            requirements.append(self.requirement())
        return Selector(tuple(requirements))

    def requirement(self) -> Requirement:
        start = self.peek()
        if start.text == "!":
            self.take()
            requirement = Requirement(self.key(' after "!"', _ABSENT_EXAMPLE), Operator.NOT_EXISTS)
        else:
            requirement = self.comparison(self.key("", _FULL_EXAMPLE))
        after = self.peek()
        if after.text not in (",", ""):
            written = self.source[start.pos : after.pos].strip()
            self.expected(after, f'"," or the end after "{written}"')
        return requirement

    def comparison(self, key: str) -> Requirement:
        op = self.peek()
        if op.text in ("=", "==", "!="):
            self.take()
            operator = Operator.NE if op.text == "!=" else Operator.EQ
            return Requirement(key, operator, (self.value(op, _EQ_EXAMPLE),))
        if op.text in ("in", "notin"):
            self.take()
            return Requirement(key, Operator(op.text), self.value_list(op))
        if op.is_word:
            self.expected(op, f'an operator (=, ==, !=, in, notin) after key "{key}"', _EQ_EXAMPLE)
        return Requirement(key, Operator.EXISTS)

    def value_list(self, op: _Token) -> tuple[str, ...]:
        opening = self.take()
        if opening.text != "(":
            self.expected(opening, f'"(" after "{op.text}"', _LIST_EXAMPLE)
        values = [self.value(opening, _LIST_EXAMPLE)]
        while (separator := self.take()).text == ",":
            values.append(self.value(separator, _LIST_EXAMPLE))
        if separator.text == "":
            # Point at the "(" left open: the end of the text says little about what is wrong.
            self.fail(opening, 'missing ")" to close the value list', _LIST_EXAMPLE)
        if separator.text != ")":
            self.expected(separator, '"," or ")" in the value list', _LIST_EXAMPLE)
        return tuple(values)

    def key(self, where: str, example: str) -> str:
        token = self.take()
        if not token.is_word:
            self.expected(token, f"a label key{where}", example)
        if (problem := _key_problem(token.text)) is not None:
            self.fail(token, problem, example)
        return token.text

    def value(self, before: _Token, example: str) -> str:
        token = self.take()
        if not token.is_word:
            self.expected(token, f'a value after "{before.text}"', example)
        if (problem := _value_problem(token.text)) is not None:
            self.fail(token, problem, example)
        return token.text


def parse_selector(text: str) -> Selector:
    """Parse selector text; empty or blank text selects every device."""
    return _Parser(text).selector()
