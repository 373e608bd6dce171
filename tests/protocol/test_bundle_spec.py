"""The bundle spec: strict validation with error paths, canonical form and digest."""

from __future__ import annotations

from typing import Any

import pytest

from signalbeam.domain.errors import InvalidInput
from signalbeam.protocol.bundle_v1 import parse_bundle, unit_fingerprint

SHA = "ab" * 32


def example() -> dict[str, Any]:
    return {
        "name": "warehouse-monitor",
        "version": "1.2.0",
        "containers": [
            {
                "name": "temp-sensor",
                "image": "registry.example/org/temp-sensor:1.2.0",
                "env": {"LOG_LEVEL": "info"},
                "ports": ["8080:8080"],
                "volumes": ["/data/temp:/data"],
                "restart": "unless-stopped",
                "health": {"http": "http://127.0.0.1:8080/health", "timeout": "60s"},
            }
        ],
        "apps": [
            {
                "name": "relay-controller",
                "artifact": {"url": "https://example.org/relay.tar.gz", "sha256": SHA},
                "command": ["./relay-controller", "--port", "9000"],
                "health": {"tcp": 9000},
            }
        ],
    }


def errors(document: Any) -> str:
    with pytest.raises(InvalidInput) as caught:
        parse_bundle(document)
    return caught.value.detail


def test_the_documented_example_is_valid() -> None:
    bundle = parse_bundle(example())
    assert bundle.ref == "warehouse-monitor@1.2.0"
    assert [u.name for u in bundle.units] == ["temp-sensor", "relay-controller"]
    assert bundle.containers[0].health_check.timeout == 60
    assert bundle.apps[0].health_check.probe == "tcp 9000"


def test_every_error_is_listed_with_its_path() -> None:
    doc = example()
    doc["containers"].append({"name": "second"})
    doc["containers"][0]["imgae"] = "typo"
    doc["apps"][0]["artifact"]["sha256"] = "nothex"
    detail = errors(doc)
    assert "containers[1].image: required" in detail
    assert "containers[0].imgae: unknown key" in detail
    assert "apps[0].artifact.sha256" in detail and "64 lower-case hex digits" in detail


def test_unknown_top_level_keys_and_bad_versions_are_errors() -> None:
    doc = example() | {"verison": "1"}
    doc["version"] = "1.2"
    detail = errors(doc)
    assert "verison: unknown key" in detail
    assert "version: '1.2' is not valid here (a semantic version like 1.2.0)" in detail


@pytest.mark.parametrize(
    ("health", "message"),
    [
        ({}, "give exactly one of http, tcp, exec or running-for"),
        ({"http": "http://x/h", "tcp": 80}, "(got http, tcp)"),
        ({"tcp": 70000}, "a port is a number from 1 to 65535"),
        ({"running-for": "soon"}, "write a duration like 30s"),
    ],
)
def test_health_checks_name_the_problem(health: dict[str, Any], message: str) -> None:
    doc = example()
    doc["containers"][0]["health"] = health
    detail = errors(doc)
    assert detail.startswith("containers[0].health")
    assert message in detail


def test_empty_bundles_and_duplicate_names_are_refused() -> None:
    assert "at least one entry" in errors({"name": "x", "version": "1.0.0"})
    doc = example()
    doc["apps"][0]["name"] = "temp-sensor"
    assert 'the name "temp-sensor" is used twice' in errors(doc)
    assert "a bundle is a mapping" in errors(["not", "a", "mapping"])


def test_digest_covers_meaning_not_formatting() -> None:
    a = parse_bundle(example())
    spelled_out = example()
    spelled_out["containers"][0]["health"]["timeout"] = 60
    spelled_out["containers"][0]["command"] = None
    assert parse_bundle(spelled_out).digest() == a.digest()
    changed = example()
    changed["containers"][0]["env"]["LOG_LEVEL"] = "debug"
    b = parse_bundle(changed)
    assert b.digest() != a.digest() and b.digest().startswith("sha256:")
    # Only the changed unit gets a new fingerprint, so only it is replaced on the device.
    assert unit_fingerprint(b.units[0]) != unit_fingerprint(a.units[0])
    assert unit_fingerprint(b.units[1]) == unit_fingerprint(a.units[1])


def test_canonical_form_round_trips() -> None:
    bundle = parse_bundle(example())
    again = parse_bundle(bundle.canonical())
    assert again == bundle and again.digest() == bundle.digest()


def test_a_yaml_number_where_text_belongs_says_to_quote_it() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_bundle({"name": "x", "version": 1.0, "apps": []})
    assert "version: 1.0 is a number here; quote it to make it text" in caught.value.detail
