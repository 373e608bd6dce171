"""A unit's update order: start-first by default where two copies can run, refused where not."""

from __future__ import annotations

from typing import Any

import pytest

from signalbeam.agent import spec
from signalbeam.domain.errors import InvalidInput
from signalbeam.protocol import bundle_v1

SHA = "ab" * 32


def container(**fields: Any) -> dict[str, Any]:
    return {
        "name": "b",
        "version": "1.0.0",
        "containers": [{"name": "web", "image": "i", **fields}],
    }


def app(**fields: Any) -> dict[str, Any]:
    unit = {"name": "relay", "artifact": {"sha256": SHA}, "command": ["./relay"], **fields}
    return {"name": "b", "version": "1.0.0", "apps": [unit]}


@pytest.mark.parametrize(
    ("document", "order"),
    [
        (container(), "start-first"),
        (container(ports=["8080:80"]), "stop-first"),
        (container(ports=["8080:80"], update_order="stop-first"), "stop-first"),
        (container(update_order="stop-first"), "stop-first"),
        (app(), "stop-first"),
        (app(update_order="start-first"), "start-first"),
    ],
)
def test_the_order_a_unit_is_replaced_in(document: dict[str, Any], order: str) -> None:
    for parse in (bundle_v1.parse_bundle, spec.parse_bundle):
        assert parse(document).units[0].order == order


@pytest.mark.parametrize("parse", [bundle_v1.parse_bundle, spec.parse_bundle])
def test_start_first_with_host_ports_is_refused_naming_the_field_and_the_way_out(
    parse: Any,
) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse(container(ports=["8080:80"], update_order="start-first"))
    assert (caught.value.field or "").startswith("containers[0]")
    assert "update_order: start-first" in caught.value.detail
    assert "8080:80" in caught.value.detail
    assert "use stop-first" in caught.value.detail


def test_an_unknown_order_names_the_choices() -> None:
    with pytest.raises(InvalidInput) as caught:
        bundle_v1.parse_bundle(container(update_order="blue-green"))
    assert caught.value.detail.startswith("containers[0].update_order:")
    assert "'start-first' or 'stop-first'" in caught.value.detail


def test_an_order_changes_neither_digest_nor_fingerprint_unless_written() -> None:
    plain = bundle_v1.parse_bundle(container())
    declared = bundle_v1.parse_bundle(container(update_order="start-first"))
    # Bundles pushed before update orders keep their digests: an absent order stays absent.
    assert "update_order" not in plain.canonical()["containers"][0]
    assert declared.canonical()["containers"][0]["update_order"] == "start-first"
    assert plain.digest() != declared.digest()
    # How a unit is replaced is not what runs: switching the order replaces nothing.
    assert bundle_v1.unit_fingerprint(plain.units[0]) == bundle_v1.unit_fingerprint(
        declared.units[0]
    )
    agent = spec.parse_bundle(declared.canonical())
    assert spec.unit_fingerprint(agent.units[0]) == bundle_v1.unit_fingerprint(declared.units[0])
    assert agent.digest() == declared.digest()
