"""Config in the bundle spec and on the agent: read alike on both sides, rendered, verified.

Bundles written before config existed keep their digest and unit fingerprints byte for byte
(the values below were computed by the code before config was added), so no device
restarts a unit because its agent or server was upgraded.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from signalbeam.agent import spec
from signalbeam.agent.config_layers import ConfigRefused, read_config
from signalbeam.agent.config_render import MissingKey, effective, render
from signalbeam.domain.errors import InvalidInput
from signalbeam.protocol import bundle_v1
from signalbeam.protocol.signing import KeyPair, Trust, TrustedKey
from tests.agent.config_plane import ConfigPlane, layer
from tests.agent.test_spec_contract import assert_read_alike, read_by_both

SHA = "ab" * 32
WITHOUT_CONFIG: dict[str, Any] = {
    "name": "kiosk",
    "version": "1.2.0",
    "containers": [
        {
            "name": "web",
            "image": "registry.local/web:1.2",
            "env": {"A": "1"},
            "ports": ["8080:80"],
            "health": {"http": "http://127.0.0.1:8080/health", "timeout": "20s"},
        }
    ],
    "apps": [
        {
            "name": "relay",
            "artifact": {"url": "http://files.local/relay.tgz", "sha256": SHA},
            "command": ["./relay", "--fast"],
            "env": {"B": "2"},
            "update_order": "start-first",
        }
    ],
}
PINNED_DIGEST = "sha256:1ba4b932026ef4abf1def3e5a50c1ea2a149050fbc4c91c8ed1198ac9d018532"
PINNED_FINGERPRINTS = ["46fa3e4007c00198", "cac3b622ac958941"]


def with_config() -> dict[str, Any]:
    document = copy.deepcopy(WITHOUT_CONFIG)
    web, relay = document["containers"][0], document["apps"][0]
    web["config_env"] = {"LOG_LEVEL": "log.level"}
    web["config_files"] = [{"path": "/etc/web/db.json", "key": "db"}]
    relay["config_files"] = [
        {"path": "conf/relay.ini", "template": "level={{ log.level }}\npw={{pw}}", "mode": "0640"}
    ]
    relay["reload_signal"] = "SIGHUP"
    document["config_schema"] = {"type": "object", "required": ["log.level"]}
    return document


def test_bundles_without_config_keep_their_digest_and_fingerprints() -> None:
    server, agent = read_by_both(WITHOUT_CONFIG)
    assert server.digest() == agent.digest() == PINNED_DIGEST
    assert [bundle_v1.unit_fingerprint(u) for u in server.units] == PINNED_FINGERPRINTS
    assert [spec.unit_fingerprint(u) for u in agent.units] == PINNED_FINGERPRINTS
    assert "config_env" not in json.dumps(server.canonical())


def test_bundles_with_config_read_alike_as_pushed_and_as_handed_out() -> None:
    server, agent = read_by_both(with_config())
    assert server is not None and agent is not None
    assert_read_alike(server, agent)
    assert_read_alike(server, spec.parse_bundle(json.loads(json.dumps(server.canonical()))))
    assert server.digest() != PINNED_DIGEST


def test_a_reload_signal_alone_replaces_nothing_but_config_declarations_do() -> None:
    base = bundle_v1.parse_bundle(with_config()).apps[0]
    changed = with_config()
    changed["apps"][0]["reload_signal"] = "SIGUSR1"
    assert bundle_v1.unit_fingerprint(bundle_v1.parse_bundle(changed).apps[0]) == (
        bundle_v1.unit_fingerprint(base)
    )
    changed["apps"][0]["config_env"] = {"LEVEL": "log.level"}
    assert bundle_v1.unit_fingerprint(bundle_v1.parse_bundle(changed).apps[0]) != (
        bundle_v1.unit_fingerprint(base)
    )


def variant(where: str, index: int, **fields: Any) -> dict[str, Any]:
    document = with_config()
    unit = document[where][0]
    unit["config_files"][index] = {**unit["config_files"][index], **fields}
    return document


@pytest.mark.parametrize(
    ("document", "field", "text"),
    [
        (variant("apps", 0, path="../etc/passwd"), "apps[0].config_files[0].path", "inside"),
        (variant("apps", 0, path="/etc/relay.ini"), "apps[0].config_files[0].path", "absolute"),
        (variant("containers", 0, path="etc/db.json"), "containers[0].config_files[0].path", ""),
        (variant("containers", 0, path="/etc/a:b"), "containers[0].config_files[0].path", ""),
        (variant("apps", 0, key="pw"), "apps[0].config_files[0]", "exactly one of key"),
        (variant("apps", 0, mode="rw-r--r--"), "apps[0].config_files[0].mode", "octal"),
    ],
)
def test_bad_config_files_are_refused_naming_the_field(
    document: dict[str, Any], field: str, text: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        bundle_v1.parse_bundle(document)
    assert refused.value.field == field
    assert text in refused.value.detail
    assert read_by_both(document) == (None, None)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"config_env": {"9BAD": "log.level"}}, "containers[0].config_env"),
        ({"config_env": {"LOG": "no spaces"}}, "containers[0].config_env.LOG"),
        ({"env": {"LOG_LEVEL": "x"}}, "containers[0]"),
        ({"reload_signal": "SIGKILL"}, "containers[0].reload_signal"),
    ],
)
def test_bad_config_env_is_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    document = with_config()
    document["containers"][0].update(change)
    with pytest.raises(InvalidInput) as refused:
        bundle_v1.parse_bundle(document)
    assert (refused.value.field or "").startswith(field)
    assert read_by_both(document) == (None, None)


def test_a_config_schema_that_is_no_json_schema_is_refused_at_push() -> None:
    document = with_config()
    document["config_schema"] = {"type": "object", "properties": {"a": {"type": "strin"}}}
    with pytest.raises(InvalidInput) as refused:
        bundle_v1.parse_bundle(document)
    assert refused.value.field == "config_schema"
    assert "properties/a/type" in refused.value.detail
    document["config_schema"] = ["not", "an", "object"]
    assert read_by_both(document) == (None, None)


def test_rendering_fills_env_and_files_and_names_a_missing_key(tmp_path: Path) -> None:
    bundle = spec.parse_bundle(with_config())
    web, relay = bundle.units
    config = read_config(
        section_of([({"log.level": "debug", "db": {"port": 5432}}, {"pw": "x"})]), TRUST
    )
    rendered = render(web, config)
    assert rendered is not None and rendered.env == {"LOG_LEVEL": "debug"}
    assert rendered.files[0].content == b'{"port":5432}' and rendered.files[0].mode == 0o644
    relay_files = render(relay, config)
    assert relay_files is not None
    assert (
        relay_files.files[0].content == b"level=debug\npw=x" and relay_files.files[0].mode == 0o640
    )
    with pytest.raises(MissingKey, match="unit web needs config key db, which no layer sets"):
        render(web, read_config(section_of([({"log.level": "debug"}, {})]), TRUST))
    # The container mounts its file read-only; a unit without config is exactly itself.
    mounted = effective(web, config, tmp_path)
    assert isinstance(mounted.spec, spec.ContainerSpec)
    assert mounted.spec.volumes[-1].endswith(":/etc/web/db.json:ro")
    plain = spec.parse_bundle(WITHOUT_CONFIG).units[0]
    assert effective(plain, config, tmp_path).fingerprint == spec.unit_fingerprint(plain)


def test_new_files_alone_leave_a_signalled_unit_s_fingerprint_alone(tmp_path: Path) -> None:
    relay = spec.parse_bundle(with_config()).apps[0]
    before = read_config(section_of([({"log.level": "info"}, {"pw": "x"})]), TRUST)
    after = read_config(section_of([({"log.level": "debug"}, {"pw": "x"})]), TRUST)
    assert (
        effective(relay, before, tmp_path).fingerprint
        == effective(relay, after, tmp_path).fingerprint
    )
    web = spec.parse_bundle(with_config()).containers[0]
    full = {"db": 1}
    assert (
        effective(
            web, read_config(section_of([({**full, "log.level": "info"}, {})]), TRUST), tmp_path
        ).fingerprint
        != effective(
            web, read_config(section_of([({**full, "log.level": "debug"}, {})]), TRUST), tmp_path
        ).fingerprint
    )


PLANE = ConfigPlane()
TRUST = Trust(1, (TrustedKey(PLANE.key.key_id, "server", PLANE.key.public_key),))


def section_of(layers: list[tuple[dict[str, Any], dict[str, str]]]) -> dict[str, Any]:
    made = [layer("tenant", "", 1, values, secrets) for values, secrets in layers]
    return PLANE.section(made)


def test_a_config_section_verifies_only_as_signed() -> None:
    good = section_of([({"a": 1}, {"pw": "s3cret"})])
    config = read_config(good, TRUST)
    assert config is not None and config.values == {"a": 1, "pw": "s3cret"}
    assert config.digest == good["digest"] and config.secrets == {"pw"}
    assert read_config(None, TRUST) is None and read_config({"layers": []}, TRUST) is None

    tampered = copy.deepcopy(good)
    tampered["layers"][0]["values"]["a"] = 2
    wrong = copy.deepcopy(good)
    wrong["secrets"]["pw"] = "guess"
    digest = copy.deepcopy(good)
    digest["digest"] = "sha256:" + "0" * 64
    stranger = copy.deepcopy(good)
    other = KeyPair.generate()
    payload = layer("tenant", "", 1, {"a": 1}, {"pw": "s3cret"})[0].payload()
    stranger["layers"][0]["signatures"] = [other.sign(payload).to_dict()]
    for bad, text in [
        (tampered, "config of tenant, version 1: signature verification failed"),
        (wrong, "secret pw does not match the hash signed in tenant, version 1"),
        (digest, "desired config digest mismatch"),
        (stranger, f"key {other.key_id} is not trusted"),
        ({"layers": "no"}, "not a config section"),
    ]:
        with pytest.raises(ConfigRefused) as refused:
            read_config(bad, TRUST)
        assert text in refused.value.reason
        assert "guess" not in refused.value.reason and "s3cret" not in refused.value.reason
