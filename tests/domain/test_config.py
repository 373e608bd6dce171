"""Config layers before they are stored: validation, patches, diffs, effective view, status."""

from __future__ import annotations

from typing import Any

import pytest

from signalbeam.domain.config import (
    MAX_PRIORITY,
    SECRET_PLACEHOLDER,
    Change,
    LayerContent,
    Patch,
    apply_patch,
    check_priority,
    check_secrets,
    check_size,
    check_values,
    config_status,
    diff,
    effective,
    replace_values,
    schema_problem,
    schema_view,
)
from signalbeam.domain.errors import InvalidInput
from signalbeam.protocol.config_v1 import MAX_DOCUMENT_BYTES, MAX_KEYS, Layer, secret_hash

HASH = secret_hash("s3cret")


def refused(call: Any, *args: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        call(*args)
    return caught.value


def test_values_must_be_an_object_of_valid_keys() -> None:
    assert check_values({"LOG_LEVEL": "debug", "a.b-c_1": 1}, "set") == {
        "LOG_LEVEL": "debug",
        "a.b-c_1": 1,
    }
    assert refused(check_values, ["x"], "values").field == "values"
    bad = refused(check_values, {"9lives": 1}, "set")
    assert bad.field == "set.9lives" and "not a valid config key" in bad.detail
    assert refused(check_values, {"x" * 129: 1}, "set").field == "set." + "x" * 129
    assert refused(check_values, {"has space": 1}, "values").field == "values.has space"


def test_secrets_must_be_strings() -> None:
    assert check_secrets({"TOKEN": "t"}) == {"TOKEN": "t"}
    bad = refused(check_secrets, {"TOKEN": 42})
    assert bad.field == "secrets.TOKEN" and "must be a string (got int)" in bad.detail
    assert refused(check_secrets, {"TOKEN": None}).field == "secrets.TOKEN"


@pytest.mark.parametrize(
    ("priority", "scope", "ok"),
    [
        (None, "tenant", True),
        (0, "device", True),
        (MAX_PRIORITY, "group", True),
        (-1000, "group", True),
        (1001, "group", False),
        (-1001, "group", False),
        (1, "tenant", False),
        (5, "device", False),
    ],
)
def test_priority_is_bounded_and_only_for_groups(
    priority: int | None, scope: Any, ok: bool
) -> None:
    if ok:
        check_priority(priority, scope)
    else:
        assert refused(check_priority, priority, scope).field == "priority"


def test_size_and_key_limits_count_secrets_too() -> None:
    check_size(LayerContent({"A": "x" * 1000}), {}, "set")
    near = MAX_DOCUMENT_BYTES - 100
    check_size(LayerContent({"A": "x" * near}), {}, "set")
    over = refused(
        check_size, LayerContent({"A": "x" * near}, {"S": HASH}), {"S": "y" * 200}, "set"
    )
    assert over.field == "set" and "64 KiB" in over.detail
    many = LayerContent({f"K{i}": i for i in range(MAX_KEYS)}, {"S": HASH})
    assert refused(check_size, many, {"S": "v"}, "values").field == "values"
    nan = refused(check_size, LayerContent({"A": float("nan")}), {}, "set")
    assert nan.field == "set"


def test_a_patch_sets_unsets_and_turns_values_into_secrets_and_back() -> None:
    current = LayerContent({"A": 1, "B": 2}, {"S": HASH}, priority=3)
    after = apply_patch(current, Patch(set={"C": 3, "S": "plain"}, unset=["A"], secrets={"B": "b"}))
    assert after.values == {"C": 3, "S": "plain"}
    assert after.secret_hashes == {"B": secret_hash("b")}
    assert after.priority == 3
    assert apply_patch(current, Patch(priority=-7)).priority == -7
    # Unsetting a key that is not there is no error: the result is the same.
    assert apply_patch(current, Patch(unset=["nope"])) == current


def test_a_patch_that_contradicts_itself_is_refused() -> None:
    current = LayerContent()
    assert refused(apply_patch, current, Patch(set={"A": 1}, unset=["A"])).field == "unset.A"
    assert refused(apply_patch, current, Patch(secrets={"A": "x"}, unset=["A"])).field == "unset.A"
    assert refused(apply_patch, current, Patch(set={"A": 1}, secrets={"A": "x"})).field == "set.A"
    assert refused(apply_patch, current, Patch(set={"1x": 1})).field == "set.1x"
    assert refused(apply_patch, current, Patch(secrets={"T": 1})).field == "secrets.T"


def test_a_put_replaces_values_and_keeps_secrets_not_named() -> None:
    current = LayerContent({"A": 1}, {"S": HASH, "T": HASH}, priority=2)
    after = replace_values(current, {"B": 2, "T": "now plain"}, None)
    assert after == LayerContent({"B": 2, "T": "now plain"}, {"S": HASH}, 2)
    assert replace_values(current, {}, 9).priority == 9
    assert refused(replace_values, current, "text", None).field == "values"


def test_diff_names_each_change_and_hides_secret_values() -> None:
    old = LayerContent({"A": 1, "B": "x", "C": True, "D": 1}, {"S": HASH, "U": HASH})
    new = LayerContent({"A": 2, "B": "x", "C": 1, "E": [1], "U": "plain"}, {"S": HASH, "D": HASH})
    assert diff(old, new) == [
        Change("A", "changed", 1, 2, False),
        # True and 1 are different JSON values even though Python calls them equal.
        Change("C", "changed", True, 1, False),
        Change("D", "changed", 1, None, True),
        Change("E", "added", None, [1], False),
        Change("U", "changed", None, "plain", True),
    ]
    rotated = LayerContent({}, {"S": secret_hash("other")})
    assert diff(LayerContent({}, {"S": HASH}), rotated) == [
        Change("S", "changed", None, None, True)
    ]
    assert diff(LayerContent({}, {"S": HASH}), LayerContent()) == [
        Change("S", "removed", None, None, True)
    ]
    assert diff(old, old) == []
    assert Change("A", "added", None, 1, False).to_dict() == {
        "key": "A",
        "change": "added",
        "old": None,
        "new": 1,
        "secret": False,
    }


def test_effective_items_say_where_each_value_came_from() -> None:
    layers = [
        Layer("device", "pi-07", 4, {"LOG_LEVEL": "debug"}, {}),
        Layer("tenant", "", 2, {"LOG_LEVEL": "info", "REGION": "eu"}, {"TOKEN": HASH}),
        Layer("group", "oslo", 1, {"REGION": "no"}, {}, priority=5),
        Layer("group", "lab", 3, {"REGION": "lab"}, {}, priority=1),
    ]
    items, digest = effective(layers)
    assert [(i.key, i.value, i.secret, i.origin) for i in items] == [
        ("LOG_LEVEL", "debug", False, "device pi-07, version 4"),
        ("REGION", "no", False, "group oslo, version 1"),
        ("TOKEN", None, True, "tenant, version 2"),
    ]
    assert digest is not None and digest.startswith("sha256:")
    assert effective([]) == ([], None)
    assert effective([Layer("tenant", "", 1, {}, {})]) == ([], None)


def test_schemas_see_secrets_as_present_strings() -> None:
    layers = [Layer("tenant", "", 1, {"PORT": 80}, {"TOKEN": HASH})]
    view = schema_view(layers)
    assert view == {"PORT": 80, "TOKEN": SECRET_PLACEHOLDER}
    schema = {
        "type": "object",
        "properties": {
            "PORT": {"type": "integer", "maximum": 65535},
            "TOKEN": {"type": "string"},
            "HOSTS": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["TOKEN"],
    }
    assert schema_problem(schema, view) is None
    problem = schema_problem(schema, {**view, "PORT": 70000})
    assert problem is not None
    assert (problem.path, problem.key) == ("$.PORT", "PORT")
    assert "70000 is greater than the maximum of 65535" in problem.reason
    nested = schema_problem(schema, {**view, "HOSTS": ["a", 2]})
    assert nested is not None and nested.path == "$.HOSTS[1]" and nested.key == "HOSTS"
    missing = schema_problem(schema, {"PORT": 1})
    assert missing is not None and missing.path == "$" and missing.key is None
    assert "'TOKEN' is a required property" in missing.reason
    broken = schema_problem({"type": "no-such-type"}, view)
    assert broken is not None and "config_schema is not valid" in broken.reason
    assert schema_problem(None, view) is None


D1, D2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64


@pytest.mark.parametrize(
    ("desired", "reported", "expected"),
    [
        ({}, None, ("none", None, None)),
        ({"config": {"digest": D1}}, None, ("pending", None, None)),
        (
            {"config": {"digest": D1}},
            {"config": {"digest": D2, "status": "applied"}},
            ("pending", None, D2),
        ),
        (
            {"config": {"digest": D1}},
            {"config": {"digest": D1, "status": "applying"}},
            ("pending", None, None),
        ),
        (
            {"config": {"digest": D1}},
            {"config": {"digest": D1, "status": "applied"}},
            ("applied", None, D1),
        ),
        (
            {"config": {"digest": D1}},
            {"config": {"digest": D1, "status": "failed", "reason": "r"}},
            ("failed", "r", None),
        ),
        # An old failure does not stand for a newer config: that one is still pending.
        (
            {"config": {"digest": D1}},
            {"config": {"digest": D2, "status": "failed", "reason": "r"}},
            ("pending", None, None),
        ),
        ({}, {"config": {"digest": D2, "status": "applied"}}, ("none", None, D2)),
        ({"config": {"digest": D1}}, {"config": "garbage"}, ("pending", None, None)),
    ],
)
def test_status_compares_desired_and_reported_digests(
    desired: dict[str, Any], reported: dict[str, Any] | None, expected: tuple[Any, ...]
) -> None:
    status = config_status(desired, reported)
    assert (status.state, status.reason, status.applied_digest) == expected
