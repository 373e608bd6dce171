"""Label selectors: parsing, canonical text, matching and the errors people see."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signalbeam.domain.errors import InvalidInput
from signalbeam.domain.selectors import (
    Operator,
    Requirement,
    Selector,
    parse_label,
    parse_selector,
    validate_label_key,
    validate_label_value,
)

EQ, NE, IN, NOTIN = Operator.EQ, Operator.NE, Operator.IN, Operator.NOTIN
EXISTS, NOT_EXISTS = Operator.EXISTS, Operator.NOT_EXISTS


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("env=prod", Requirement("env", EQ, ("prod",))),
        ("env==prod", Requirement("env", EQ, ("prod",))),
        ("env!=prod", Requirement("env", NE, ("prod",))),
        ("site in (oslo,bergen)", Requirement("site", IN, ("oslo", "bergen"))),
        ("site notin (oslo)", Requirement("site", NOTIN, ("oslo",))),
        ("gpu", Requirement("gpu", EXISTS, ())),
        ("!decommissioned", Requirement("decommissioned", NOT_EXISTS, ())),
        ("example.com/site=oslo", Requirement("example.com/site", EQ, ("oslo",))),
        ("in=notin", Requirement("in", EQ, ("notin",))),
        ("in in (in)", Requirement("in", IN, ("in",))),
        ("arch=arm64-v8.2_rc", Requirement("arch", EQ, ("arm64-v8.2_rc",))),
    ],
)
def test_parses_each_operator(text: str, expected: Requirement) -> None:
    assert parse_selector(text) == Selector((expected,))


def test_parses_several_requirements_in_order() -> None:
    selector = parse_selector("env=prod,site in (oslo,bergen),!decommissioned")

    assert selector.requirements == (
        Requirement("env", EQ, ("prod",)),
        Requirement("site", IN, ("oslo", "bergen")),
        Requirement("decommissioned", NOT_EXISTS, ()),
    )


@pytest.mark.parametrize(
    "text",
    [
        "env=prod,site in (oslo,bergen),!decommissioned",
        "  env = prod , site in ( oslo , bergen ) , ! decommissioned  ",
        "env==prod,site in(oslo,bergen),!decommissioned",
        "\tenv=prod,\nsite   in   (oslo,bergen),!decommissioned\n",
    ],
)
def test_whitespace_around_tokens_is_ignored(text: str) -> None:
    assert str(parse_selector(text)) == "env=prod,site in (oslo,bergen),!decommissioned"


@pytest.mark.parametrize("text", ["", " ", "\t\n  "])
def test_empty_selector_matches_everything(text: str) -> None:
    selector = parse_selector(text)

    assert selector == Selector(())
    assert selector.matches({})
    assert selector.matches({"env": "prod"})


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        (" env == prod ", "env=prod"),
        ("env != prod", "env!=prod"),
        ("site  notin(a ,b )", "site notin (a,b)"),
        ("site in (oslo)", "site in (oslo)"),
        ("! gone", "!gone"),
        ("gpu , !gone", "gpu,!gone"),
        ("", ""),
    ],
)
def test_str_is_canonical_and_parses_back(text: str, canonical: str) -> None:
    selector = parse_selector(text)

    assert str(selector) == canonical
    assert parse_selector(canonical) == selector


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("env=prod", {"env": "prod"}, True),
        ("env=prod", {"env": "dev"}, False),
        ("env=prod", {}, False),
        ("env=prod", {"env": "Prod"}, False),
        ("env!=prod", {"env": "prod"}, False),
        ("env!=prod", {"env": "dev"}, True),
        ("env!=prod", {}, True),
        ("site in (oslo,bergen)", {"site": "oslo"}, True),
        ("site in (oslo,bergen)", {"site": "bergen"}, True),
        ("site in (oslo,bergen)", {"site": "tromso"}, False),
        ("site in (oslo,bergen)", {}, False),
        ("site notin (oslo,bergen)", {"site": "oslo"}, False),
        ("site notin (oslo,bergen)", {"site": "tromso"}, True),
        ("site notin (oslo,bergen)", {}, True),
        ("gpu", {"gpu": "nvidia"}, True),
        ("gpu", {"gpu": ""}, True),
        ("gpu", {"env": "prod"}, False),
        ("!gpu", {"gpu": "nvidia"}, False),
        ("!gpu", {"env": "prod"}, True),
        ("env=prod,!decommissioned", {"env": "prod"}, True),
        ("env=prod,!decommissioned", {"env": "prod", "decommissioned": "yes"}, False),
        ("env=prod,site in (oslo)", {"env": "prod", "site": "bergen"}, False),
    ],
)
def test_matches(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_selector(text).matches(labels) is expected


@pytest.mark.parametrize(
    ("text", "position", "complaint"),
    [
        ("env=prod,site in (oslo", 17, 'missing ")" to close the value list'),
        ("a notin (b", 8, 'missing ")" to close the value list'),
        ("a,", 2, "expected a label key, found the end of the selector"),
        (",a", 0, 'expected a label key, found ","'),
        ("env = prod ,, site", 12, 'expected a label key, found ","'),
        ("!", 1, 'expected a label key after "!", found the end of the selector'),
        ("!!a", 1, 'expected a label key after "!", found "!"'),
        ("a b", 2, 'expected an operator (=, ==, !=, in, notin) after key "a", found "b"'),
        ("a=b!", 3, 'expected "," or the end after "a=b", found "!"'),
        ("  a=b  c", 7, 'expected "," or the end after "a=b", found "c"'),
        ("!a=b", 2, 'expected "," or the end after "!a", found "="'),
        ("a=", 2, 'expected a value after "=", found the end of the selector'),
        ("a===b", 3, 'expected a value after "==", found "="'),
        ("a=(b)", 2, 'expected a value after "=", found "("'),
        ("a in x", 5, 'expected "(" after "in", found "x"'),
        ("a in", 4, 'expected "(" after "in", found the end of the selector'),
        ("a in ()", 6, 'expected a value after "(", found ")"'),
        ("a in (x,)", 8, 'expected a value after ",", found ")"'),
        ("a in (x y)", 8, 'expected "," or ")" in the value list, found "y"'),
        ("a@b", 1, 'unexpected character "@"'),
        ("é=x", 0, 'unexpected character "é"'),
        (".a=b", 0, 'key ".a" must start and end with a letter or digit'),
        ("a/b/c", 0, 'key "a/b/c" must start and end with a letter or digit'),
        ("a=b/c", 2, 'value "b/c" must start and end with a letter or digit'),
        ("a in (ok,-bad)", 9, 'value "-bad" must start and end with a letter or digit'),
        ("k" * 64, 0, f'key "{"k" * 64}" is 64 characters; at most 63 are allowed'),
        ("a=" + "v" * 64, 2, "is 64 characters; at most 63 are allowed"),
    ],
)
def test_syntax_errors_quote_the_text_position_and_an_example(
    text: str, position: int, complaint: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_selector(text)

    detail = caught.value.detail
    assert detail.startswith(f'selector "{text}" is not valid at position {position}: ')
    assert complaint in detail
    assert "; expected e.g. " in detail
    assert caught.value.field == "selector"


def test_unclosed_list_error_reads_as_a_sentence() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_selector("env=prod,site in (oslo")

    assert caught.value.detail == (
        'selector "env=prod,site in (oslo" is not valid at position 17: '
        'missing ")" to close the value list; expected e.g. site in (oslo,bergen)'
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("site=oslo", ("site", "oslo")),
        ("  site = oslo ", ("site", "oslo")),
        ("example.com/site=oslo", ("example.com/site", "oslo")),
        ("version=1.2.3-rc_1", ("version", "1.2.3-rc_1")),
    ],
)
def test_parse_label(text: str, expected: tuple[str, str]) -> None:
    assert parse_label(text) == expected


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("site", 'label "site" must look like key=value, e.g. site=oslo'),
        ("", 'label "" must look like key=value, e.g. site=oslo'),
        ("=oslo", 'label "=oslo" is not valid: key is empty'),
        ("site=", 'label "site=" is not valid: value is empty'),
        ("site=os lo", 'label "site=os lo" is not valid: value "os lo" must start and end'),
        ("site=a=b", 'value "a=b" must start and end with a letter or digit'),
        ("-site=oslo", 'key "-site" must start and end with a letter or digit'),
        ("k=" + "v" * 64, "is 64 characters; at most 63 are allowed"),
    ],
)
def test_parse_label_errors(text: str, complaint: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_label(text)

    assert complaint in caught.value.detail
    assert caught.value.field == "labels"


@pytest.mark.parametrize("key", ["a", "site", "k" * 63, "example.com/site", "a-b_c.d", "9"])
def test_valid_label_keys_pass(key: str) -> None:
    validate_label_key(key)


@pytest.mark.parametrize(
    ("key", "rule"),
    [
        ("", "label key is empty"),
        ("k" * 64, "is 64 characters; at most 63 are allowed"),
        ("site!", 'contain only letters, digits, ".", "_" or "-"'),
        ("_site", "start and end with a letter or digit"),
        ("a//b", 'at most one "/" after a prefix'),
        ("/site", 'at most one "/" after a prefix'),
    ],
)
def test_invalid_label_keys_name_the_rule(key: str, rule: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_label_key(key)

    assert rule in caught.value.detail
    assert caught.value.field == "labels"


@pytest.mark.parametrize("value", ["oslo", "v" * 63, "1.2.3", "a_b-c", "0"])
def test_valid_label_values_pass(value: str) -> None:
    validate_label_value(value)


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("", "label value is empty"),
        ("v" * 64, "is 64 characters; at most 63 are allowed"),
        ("a/b", "contain only letters, digits"),
        ("oslo.", "start and end with a letter or digit"),
    ],
)
def test_invalid_label_values_name_the_rule(value: str, rule: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_label_value(value)

    assert rule in caught.value.detail


@pytest.mark.parametrize(
    ("op", "values", "complaint"),
    [
        (EQ, (), 'operator "=" takes exactly one value, got 0'),
        (NE, ("a", "b"), 'operator "!=" takes exactly one value, got 2'),
        (IN, (), 'operator "in" takes at least one value, got 0'),
        (EXISTS, ("a",), 'operator "exists" takes no values, got 1'),
        (NOT_EXISTS, ("a",), 'operator "!" takes no values, got 1'),
        (EQ, ("bad value",), 'value "bad value" must start and end'),
    ],
)
def test_requirement_refuses_what_it_could_not_print(
    op: Operator, values: tuple[str, ...], complaint: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        Requirement("env", op, values)

    assert complaint in caught.value.detail


_names = st.text(string.ascii_letters + string.digits + "._-", min_size=1, max_size=63).filter(
    lambda name: name[0].isalnum() and name[-1].isalnum()
)
# Values follow the key rule without the optional prefix.
_values = _names
_keys = (
    st.tuples(st.none() | _names, _names)
    .map(lambda parts: parts[1] if parts[0] is None else f"{parts[0]}/{parts[1]}")
    .filter(lambda key: len(key) <= 63)
)


@st.composite
def _requirements(draw: st.DrawFn) -> Requirement:
    op = draw(st.sampled_from(Operator))
    if op in (EQ, NE):
        values: tuple[str, ...] = (draw(_values),)
    elif op in (IN, NOTIN):
        values = tuple(draw(st.lists(_values, min_size=1, max_size=4)))
    else:
        values = ()
    return Requirement(draw(_keys), op, values)


_selectors = st.lists(_requirements(), max_size=5).map(
    lambda requirements: Selector(tuple(requirements))
)


@given(_selectors)
def test_str_parses_back_to_an_equal_selector(selector: Selector) -> None:
    assert parse_selector(str(selector)) == selector
