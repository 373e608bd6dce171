"""Config layers through the real management API: versions, history, diff, rollback, dry runs,
secrets, and the signed config section that reaches the devices a layer applies to."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import event, select

from signalbeam.protocol.config_v1 import Layer, layer_payload, merge, secret_hash
from signalbeam.protocol.signing import KeyPair, Trust, verify
from signalbeam.server.db.models import ConfigLayer, Device, Event
from signalbeam.server.runtime import Runtime
from tests.helpers import enroll, enrollment_token, new_device, sync

TENANT = "/api/v1/config/tenant"
BUNDLE: dict[str, Any] = {
    "name": "site",
    "version": "1.0.0",
    "containers": [{"name": "web", "image": "127.0.0.1:5000/site:1.0.0"}],
}


async def patch(client: httpx.AsyncClient, path: str, **body: Any) -> dict[str, Any]:
    response = await client.patch(path, json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def desired(anon: httpx.AsyncClient, credential: str) -> dict[str, Any]:
    """The desired state a device gets when it syncs (generation and document)."""
    response = await sync(anon, credential, known_generation=-1)
    assert response.status_code == 200, response.text
    state: dict[str, Any] = response.json()["desired"]
    return state


async def generation(client: httpx.AsyncClient, device_id: str) -> int:
    body = (await client.get(f"/api/v1/devices/{device_id}")).json()
    value: int = body["desired"]["generation"]
    return value


async def assign_site(client: httpx.AsyncClient, **target: Any) -> None:
    pushed = await client.post("/api/v1/bundles", json=BUNDLE)
    assert pushed.status_code in (200, 201), pushed.text
    path = f"/api/v1/bundles/site/versions/{BUNDLE['version']}/assign"
    assigned = await client.post(path, json=target)
    assert assigned.status_code == 200, assigned.text


async def trust(client: httpx.AsyncClient) -> Trust:
    return Trust.from_statement((await client.get("/api/v1/signing/trust")).json()["statement"])


def check_section(section: dict[str, Any], pinned: Trust) -> dict[str, Any]:
    """What an agent checks: every layer signed by a trusted key, secrets match their hashes,
    the digest is the merge's; returns the effective values with secrets in clear."""
    layers = []
    for wire in section["layers"]:
        layer = Layer(
            wire["scope"],
            wire["name"],
            wire["version"],
            wire["values"],
            wire["secret_hashes"],
            wire["priority"],
        )
        verify(pinned, layer_payload(layer), wire["signatures"], f"config {layer.scope}")
        layers.append(layer)
    merged, hashes = merge(layers)
    assert section["digest"] == merged.digest(hashes)
    assert set(section["secrets"]) == set(merged.secrets)
    for key, value in section["secrets"].items():
        assert secret_hash(value) == hashes[key]
    return {**merged.values, **section["secrets"]}


async def test_versions_history_diff_and_rollback(client: httpx.AsyncClient) -> None:
    empty = (await client.get(TENANT)).json()
    assert (empty["version"], empty["values"], empty["secrets"]) == (0, {}, [])

    first = await patch(client, TENANT, set={"LOG_LEVEL": "info", "PORT": 8080}, message="start")
    assert first["layer"]["version"] == 1 and first["layer"]["author"] == "user:admin"
    assert [(c["key"], c["change"]) for c in first["changes"]] == [
        ("LOG_LEVEL", "added"),
        ("PORT", "added"),
    ]
    second = await patch(client, TENANT, set={"LOG_LEVEL": "debug"}, unset=["PORT"])
    assert second["layer"]["values"] == {"LOG_LEVEL": "debug"}
    current = (await client.get(TENANT)).json()
    assert (current["version"], current["values"]) == (2, {"LOG_LEVEL": "debug"})

    history = (await client.get(f"{TENANT}/history")).json()
    assert history["total"] == 2
    assert [(i["version"], i["message"]) for i in history["items"]] == [(2, ""), (1, "start")]
    assert history["items"][0]["changes"] == [
        {"key": "LOG_LEVEL", "change": "changed", "old": "info", "new": "debug", "secret": False},
        {"key": "PORT", "change": "removed", "old": 8080, "new": None, "secret": False},
    ]
    paged = (await client.get(f"{TENANT}/history", params={"limit": 1, "offset": 1})).json()
    assert [i["version"] for i in paged["items"]] == [1] and paged["items"][0]["changes"]

    assert (await client.get(f"{TENANT}/versions/1")).json()["values"] == {
        "LOG_LEVEL": "info",
        "PORT": 8080,
    }
    diff = (await client.get(f"{TENANT}/diff", params={"from": 1, "to": 2})).json()
    assert (diff["from"], diff["to"]) == (1, 2)
    assert [c["key"] for c in diff["changes"]] == ["LOG_LEVEL", "PORT"]

    back = await client.post(f"{TENANT}/rollback", json={"to": 1})
    assert back.status_code == 200, back.text
    layer = back.json()["layer"]
    assert (layer["version"], layer["values"]) == (3, {"LOG_LEVEL": "info", "PORT": 8080})
    assert layer["message"] == "rollback to version 1"

    missing = await client.get(f"{TENANT}/versions/9")
    assert (missing.status_code, missing.json()["field"]) == (404, "version")
    nowhere = await client.post(f"{TENANT}/rollback", json={"to": 9})
    assert (nowhere.status_code, nowhere.json()["field"]) == (404, "to")
    assert "versions 1..3" in nowhere.json()["detail"]
    stale = await client.patch(TENANT, json={"set": {"A": 1}, "expected_version": 2})
    assert (stale.status_code, stale.json()["field"]) == (409, "expected_version")
    fresh = await client.patch(TENANT, json={"set": {"A": 1}, "expected_version": 3})
    assert fresh.status_code == 200 and fresh.json()["layer"]["version"] == 4


async def test_put_replaces_values_and_keeps_secrets(client: httpx.AsyncClient) -> None:
    await patch(client, TENANT, set={"A": 1, "B": 2}, secrets={"TOKEN": "s3cret-value"})
    put = await client.put(TENANT, json={"values": {"C": 3}, "message": "only C"})
    assert put.status_code == 200, put.text
    layer = put.json()["layer"]
    assert (layer["values"], layer["secrets"], layer["message"]) == ({"C": 3}, ["TOKEN"], "only C")
    assert [(c["key"], c["change"]) for c in put.json()["changes"]] == [
        ("A", "removed"),
        ("B", "removed"),
        ("C", "added"),
    ]


async def test_a_change_that_changes_nothing_makes_no_version_and_pushes_nothing(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    await new_device(client, anon, "pi-1")
    await assign_site(client, devices=["pi-1"])
    await patch(client, TENANT, set={"LOG_LEVEL": "info"}, secrets={"TOKEN": "t0ken"})
    before = await generation(client, "pi-1")
    again = await patch(client, TENANT, set={"LOG_LEVEL": "info"}, secrets={"TOKEN": "t0ken"})
    assert (again["unchanged"], again["layer"]["version"], again["changes"]) == (True, 1, [])
    assert again["affected_devices"] == 0
    same = await client.put(TENANT, json={"values": {"LOG_LEVEL": "info"}})
    assert same.json()["unchanged"] and same.json()["layer"]["version"] == 1
    current = await client.post(f"{TENANT}/rollback", json={"to": 1})
    assert current.json()["unchanged"] and current.json()["layer"]["version"] == 1
    assert (await client.get(f"{TENANT}/history")).json()["total"] == 1
    assert await generation(client, "pi-1") == before
    changed = await patch(client, TENANT, secrets={"TOKEN": "another"})
    assert (changed["unchanged"], changed["layer"]["version"]) == (False, 2)
    assert await generation(client, "pi-1") == before + 1


async def test_secrets_are_write_only_and_sealed_at_rest(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, runtime: Runtime
) -> None:
    credential = await new_device(client, anon, "pi-1")
    await assign_site(client, devices=["pi-1"])
    value = "correct-horse-battery-staple"
    changed = await patch(client, TENANT, secrets={"DB_PASSWORD": value}, set={"MODE": "a"})
    assert changed["changes"] == [
        {"key": "DB_PASSWORD", "change": "added", "old": None, "new": None, "secret": True},
        {"key": "MODE", "change": "added", "old": None, "new": "a", "secret": False},
    ]
    rotated = await patch(client, TENANT, secrets={"DB_PASSWORD": value + "!"})
    assert rotated["changes"] == [
        {"key": "DB_PASSWORD", "change": "changed", "old": None, "new": None, "secret": True}
    ]
    shown = [
        (await client.get(path)).text
        for path in (
            TENANT,
            f"{TENANT}/history",
            f"{TENANT}/versions/1",
            f"{TENANT}/diff?from=0&to=2",
            "/api/v1/devices/pi-1",
            "/api/v1/devices/pi-1/config",
            "/api/v1/events",
        )
    ]
    assert all(value not in text for text in shown)
    assert (await client.get(TENANT)).json()["secrets"] == ["DB_PASSWORD"]

    async with runtime.sessions() as session:
        rows = list(await session.scalars(select(ConfigLayer)))
        stored = [str(await session.scalar(select(Device.desired_state)))]
        events = [e.message + str(e.data) for e in await session.scalars(select(Event))]
    assert [sorted(r.secrets) for r in rows] == [["DB_PASSWORD"], ["DB_PASSWORD"]]
    assert all(value not in str(r.secrets) and value not in str(r.values) for r in rows)
    assert rows[0].secret_hashes == {"DB_PASSWORD": secret_hash(value)}
    assert value not in stored[0] and "sealed_secrets" in stored[0]
    assert all(value not in text for text in events)

    # Only the device that needs it gets the clear value, in its signed config section.
    section = (await desired(anon, credential))["spec"]["config"]
    assert check_section(section, await trust(client)) == {
        "DB_PASSWORD": value + "!",
        "MODE": "a",
    }


async def test_a_group_layer_reaches_its_members_signed_and_nobody_else(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    oslo = await new_device(client, anon, "pi-oslo", {"site": "oslo"})
    bergen = await new_device(client, anon, "pi-bergen", {"site": "bergen"})
    # In the group but running no bundle: config travels with a bundle, so it gets none.
    await new_device(client, anon, "pi-oslo-idle", {"site": "oslo"})
    assert await client.post("/api/v1/groups", json={"name": "oslo", "selector": "site=oslo"})
    await assign_site(client, devices=["pi-oslo", "pi-bergen"])
    before = {d: await generation(client, d) for d in ("pi-oslo", "pi-bergen")}
    assert "config" not in (await desired(anon, oslo))["spec"]

    changed = await patch(
        client, "/api/v1/config/groups/oslo", set={"LOG_LEVEL": "debug"}, priority=5
    )
    assert changed["affected_devices"] == 1 and changed["layer"]["priority"] == 5
    assert await generation(client, "pi-oslo") == before["pi-oslo"] + 1
    assert await generation(client, "pi-bergen") == before["pi-bergen"]
    pinned = await trust(client)
    got = await desired(anon, oslo)
    assert got["generation"] == before["pi-oslo"] + 1
    assert check_section(got["spec"]["config"], pinned) == {"LOG_LEVEL": "debug"}
    assert "config" not in (await desired(anon, bergen))["spec"]

    # The tenant default reaches both; the group's value still wins in oslo.
    await patch(client, TENANT, set={"LOG_LEVEL": "info", "REGION": "no"})
    assert check_section((await desired(anon, oslo))["spec"]["config"], pinned) == {
        "LOG_LEVEL": "debug",
        "REGION": "no",
    }
    assert check_section((await desired(anon, bergen))["spec"]["config"], pinned) == {
        "LOG_LEVEL": "info",
        "REGION": "no",
    }
    effective = (await client.get("/api/v1/devices/pi-oslo/config")).json()
    assert [(i["key"], i["value"], i["origin"]) for i in effective["items"]] == [
        ("LOG_LEVEL", "debug", "group oslo, version 1"),
        ("REGION", "no", "tenant, version 1"),
    ]
    assert effective["digest"] == (await desired(anon, oslo))["spec"]["config"]["digest"]


async def test_a_new_bundle_version_keeps_the_devices_config(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    credential = await new_device(client, anon, "pi-1")
    await patch(client, "/api/v1/config/devices/pi-1", set={"COLOR": "blue"})
    await assign_site(client, devices=["pi-1"])
    first = (await desired(anon, credential))["spec"]
    assert first["bundle"]["version"] == "1.0.0"
    assert first["config"]["layers"][0]["values"] == {"COLOR": "blue"}
    second_version = {**BUNDLE, "version": "1.1.0"}
    assert (await client.post("/api/v1/bundles", json=second_version)).status_code in (200, 201)
    moved = await client.post(
        "/api/v1/bundles/site/versions/1.1.0/assign", json={"devices": ["pi-1"]}
    )
    assert moved.status_code == 200, moved.text
    second = (await desired(anon, credential))["spec"]
    assert second["bundle"]["version"] == "1.1.0"
    assert second["config"] == first["config"]


async def test_a_dry_run_previews_and_writes_nothing(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    await new_device(client, anon, "pi-1")
    await assign_site(client, devices=["pi-1"])
    await patch(client, TENANT, set={"A": 1})
    before = await generation(client, "pi-1")
    preview = await client.patch(TENANT, params={"dry_run": "true"}, json={"set": {"A": 2}})
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert (body["layer"]["version"], body["affected_devices"]) == (2, 1)
    assert body["changes"] == [
        {"key": "A", "change": "changed", "old": 1, "new": 2, "secret": False}
    ]
    back = await client.post(f"{TENANT}/rollback", params={"dry_run": "true"}, json={"to": 1})
    assert back.status_code == 200 and back.json()["changes"] == []
    assert (await client.get(TENANT)).json()["version"] == 1
    assert (await client.get(f"{TENANT}/history")).json()["total"] == 1
    assert await generation(client, "pi-1") == before


async def test_a_bundle_config_schema_refuses_a_change_naming_device_and_path(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    await new_device(client, anon, "pi-1")
    await new_device(client, anon, "pi-2")
    schema = {
        "type": "object",
        "properties": {"LOG_LEVEL": {"enum": ["info", "debug"]}},
        "required": ["LOG_LEVEL"],
    }
    spec = {
        "kind": "bundle",
        "bundle": {"name": "web", "version": "2.0.0", "config_schema": schema},
    }
    # No config yet: the bundle's schema (LOG_LEVEL required) refuses the assignment.
    refused = await client.post(
        "/api/v1/devices/desired-state", json={"devices": ["pi-1"], "spec": spec}
    )
    assert refused.status_code == 422, refused.text
    assert "device pi-1 runs web@2.0.0" in refused.json()["detail"]
    await patch(client, TENANT, set={"LOG_LEVEL": "info"})
    assigned = await client.post(
        "/api/v1/devices/desired-state", json={"devices": ["pi-1"], "spec": spec}
    )
    assert assigned.status_code == 200, assigned.text

    for dry_run in ("true", "false"):
        bad = await client.patch(
            TENANT, params={"dry_run": dry_run}, json={"set": {"LOG_LEVEL": "loud"}}
        )
        assert bad.status_code == 422, bad.text
        problem = bad.json()
        assert problem["field"] == "set.LOG_LEVEL"
        assert "device pi-1" in problem["detail"] and "$.LOG_LEVEL" in problem["detail"]
        assert "'loud' is not one of" in problem["detail"]
    gone = await client.patch(TENANT, json={"unset": ["LOG_LEVEL"]})
    assert gone.status_code == 422 and "'LOG_LEVEL' is a required property" in gone.text
    assert (await client.get(TENANT)).json()["version"] == 1
    # pi-2 runs no bundle with a schema: its own layer may say anything.
    await patch(client, "/api/v1/config/devices/pi-2", set={"LOG_LEVEL": "loud"})


async def test_bad_input_is_refused_naming_the_field(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    await client.post("/api/v1/groups", json={"name": "oslo"})
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        (TENANT, {"set": ["not", "an", "object"]}, 422, "set"),
        (TENANT, {"set": {"9lives": 1}}, 422, "set.9lives"),
        (TENANT, {"secrets": {"TOKEN": 42}}, 422, "secrets.TOKEN"),
        (TENANT, {"set": {"A": 1}, "secrets": {"A": "x"}}, 422, "set.A"),
        (TENANT, {"set": {"A": 1}, "unset": ["A"]}, 422, "unset.A"),
        # Refused even when nothing is set yet, so nothing would change (schemathesis found it).
        (TENANT, {"unset": ["0"]}, 422, "unset.0"),
        (TENANT, {"set": {"BIG": "x" * 70_000}}, 422, "set"),
        (TENANT, {"set": {f"K{i}": i for i in range(600)}}, 422, "set"),
        (TENANT, {"priority": 5}, 422, "priority"),
        ("/api/v1/config/groups/oslo", {"priority": 1001}, 422, "priority"),
        ("/api/v1/config/groups/nowhere", {"set": {"A": 1}}, 404, "group"),
        ("/api/v1/config/devices/ghost", {"set": {"A": 1}}, 404, "device_id"),
    ]
    for path, body, status, field in cases:
        response = await client.patch(path, json=body)
        assert (response.status_code, response.json().get("field")) == (status, field), (
            body,
            response.text,
        )
    not_object = await client.put(TENANT, json={"values": "text"})
    assert (not_object.status_code, not_object.json()["field"]) == (422, "values")
    assert (await client.get(TENANT)).json()["version"] == 0


async def test_status_follows_what_the_device_reports(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, runtime: Runtime
) -> None:
    credential = await new_device(client, anon, "pi-1", {"site": "oslo"})
    await client.post("/api/v1/groups", json={"name": "oslo", "selector": "site=oslo"})
    none = (await client.get("/api/v1/devices/pi-1/config")).json()
    assert (none["digest"], none["items"], none["status"]["state"]) == (None, [], "none")
    await assign_site(client, devices=["pi-1"])
    await patch(client, "/api/v1/config/groups/oslo", secrets={"KEY": "k"})
    state = await desired(anon, credential)
    digest = state["spec"]["config"]["digest"]
    shown = (await client.get("/api/v1/devices/pi-1/config")).json()
    assert shown["items"] == [
        {
            "key": "KEY",
            "value": None,
            "secret": True,
            "source": {"scope": "group", "name": "oslo", "version": 1},
            "origin": "group oslo, version 1",
        }
    ]
    assert shown["status"] == {"state": "pending", "reason": None, "applied_digest": None}

    async def report(config: dict[str, Any]) -> dict[str, Any]:
        reported = {"generation": state["generation"], "status": "running", "config": config}
        assert (await sync(anon, credential, reported=reported)).status_code == 200
        status: dict[str, Any] = (await client.get("/api/v1/devices/pi-1/config")).json()["status"]
        return status

    failed = await report({"digest": digest, "status": "failed", "reason": "unit web unhealthy"})
    assert failed == {"state": "failed", "reason": "unit web unhealthy", "applied_digest": None}
    assert (await client.get("/api/v1/groups/oslo/config/status")).json() == {
        "applied": 0,
        "pending": 0,
        "failed": 1,
        "none": 0,
    }
    applied = await report({"digest": digest, "status": "applied"})
    assert applied == {"state": "applied", "reason": None, "applied_digest": digest}
    assert (await client.get("/api/v1/groups/oslo/config/status")).json()["applied"] == 1
    missing = await client.get("/api/v1/groups/nowhere/config/status")
    assert (missing.status_code, missing.json()["field"]) == (404, "group")


async def test_joining_and_leaving_groups_moves_the_config(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    credential = await new_device(client, anon, "pi-1", {"site": "oslo"})
    await client.post("/api/v1/groups", json={"name": "oslo", "selector": "site=oslo"})
    await client.post("/api/v1/groups", json={"name": "lab"})
    await patch(client, "/api/v1/config/groups/oslo", set={"CITY": "oslo"})
    await patch(client, "/api/v1/config/groups/lab", set={"LAB": True})
    await assign_site(client, devices=["pi-1"])
    pinned = await trust(client)

    async def values() -> dict[str, Any]:
        spec = (await desired(anon, credential))["spec"]
        return check_section(spec["config"], pinned) if "config" in spec else {}

    assert await values() == {"CITY": "oslo"}
    joined = await client.post("/api/v1/groups/lab/members", json={"devices": ["pi-1"]})
    assert joined.status_code == 200
    assert await values() == {"CITY": "oslo", "LAB": True}
    moved = await client.patch("/api/v1/devices/pi-1/labels", json={"set": {"site": "bergen"}})
    assert moved.status_code == 200
    assert await values() == {"LAB": True}
    await client.delete("/api/v1/groups/lab/members/pi-1")
    assert await values() == {}
    # A deleted group takes its config along: a new group of the same name starts empty.
    await client.post("/api/v1/groups/lab/members", json={"devices": ["pi-1"]})
    assert await values() == {"LAB": True}
    assert (await client.delete("/api/v1/groups/lab")).status_code == 204
    assert await values() == {}
    await client.post("/api/v1/groups", json={"name": "lab", "selector": "site=bergen"})
    assert await values() == {}
    assert (await client.get("/api/v1/config/groups/lab")).json()["version"] == 0


async def test_every_change_is_a_config_changed_event(client: httpx.AsyncClient) -> None:
    await patch(client, TENANT, set={"A": 1}, secrets={"PASSWORD": "hunter2-hunter2"})
    events = (await client.get("/api/v1/events", params={"type": "config.changed"})).json()
    [event] = events["items"]
    assert event["data"] == {
        "scope": "tenant",
        "name": "",
        "version": 1,
        "author": "user:admin",
        "keys": ["A", "PASSWORD"],
    }
    assert "hunter2" not in str(event)


async def test_operator_keys_only_refuses_config_changes(client: httpx.AsyncClient) -> None:
    alice = KeyPair.generate()
    added = await client.post(
        "/api/v1/signing-keys", json={"name": "alice", "public_key": alice.public_key}
    )
    assert added.status_code == 201, added.text
    switched = await client.put("/api/v1/signing/policy", json={"operator_keys_only": True})
    assert switched.status_code == 200, switched.text
    refused = await client.patch(TENANT, json={"set": {"A": 1}})
    assert refused.status_code == 409, refused.text
    assert "config signing by operator keys is not supported yet" in refused.json()["detail"]
    assert (await client.get(TENANT)).json()["version"] == 0


async def test_viewers_read_config_but_cannot_change_it(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, app: FastAPI
) -> None:
    await new_device(client, anon, "pi-1")
    await client.post("/api/v1/groups", json={"name": "oslo"})
    password = "correct horse battery"
    created = await client.post(
        "/api/v1/users", json={"username": "vera", "role": "viewer", "password": password}
    )
    assert created.status_code == 201, created.text
    login = await anon.post("/api/v1/auth/login", json={"username": "vera", "password": password})
    headers = {"Authorization": f"Bearer {login.json()['token']}"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://t", headers=headers
    ) as viewer:
        for layer in (TENANT, "/api/v1/config/groups/oslo", "/api/v1/config/devices/pi-1"):
            await patch(client, layer, set={"A": 1}, secrets={"S": "viewers-never-see-this"})
            for path in (
                layer,
                f"{layer}/history",
                f"{layer}/versions/1",
                f"{layer}/diff?from=0&to=1",
            ):
                read = await viewer.get(path)
                assert read.status_code == 200, read.text
                assert "viewers-never-see-this" not in read.text
            for method, path, body in (
                ("PATCH", layer, {"set": {"A": 2}}),
                ("PUT", layer, {"values": {}}),
                ("POST", f"{layer}/rollback", {"to": 1}),
            ):
                for dry_run in ("true", "false"):
                    url = f"{path}?dry_run={dry_run}"
                    refused = await viewer.request(method, url, json=body)
                    assert refused.status_code == 403, (method, url, refused.text)
            assert (await client.get(layer)).json()["version"] == 1
        assert (await viewer.get("/api/v1/devices/pi-1/config")).status_code == 200
        assert (await viewer.get("/api/v1/groups/oslo/config/status")).status_code == 200


async def test_a_group_change_costs_the_same_queries_for_20_or_200_devices(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, runtime: Runtime
) -> None:
    token = await enrollment_token(client, labels={"site": "oslo"})
    await client.post("/api/v1/groups", json={"name": "oslo", "selector": "site=oslo"})
    statements: list[str] = []

    # Only what a config write sends: background workers share the engine.
    ours = ("config_layers", "desired_generation", "INSERT INTO events", "devices.labels")

    def count(*args: Any) -> None:
        if any(part in str(args[2]) for part in ours):
            statements.append(str(args[2]))

    async def change(value: int) -> int:
        await assign_site(client, selector="site=oslo")
        statements.clear()
        event.listen(runtime.engine.sync_engine, "before_cursor_execute", count)
        try:
            await patch(client, "/api/v1/config/groups/oslo", set={"N": value})
        finally:
            event.remove(runtime.engine.sync_engine, "before_cursor_execute", count)
        return len(statements)

    for n in range(20):
        await enroll(anon, token, f"pi-{n:03}")
    few = await change(1)
    for n in range(20, 200):
        await enroll(anon, token, f"pi-{n:03}")
    many = await change(2)
    assert many == few, "\n".join(s.split("\n")[0][:150] for s in statements)
    # One signature per layer version, shared by every device's section.
    async with runtime.sessions() as session:
        states = list(await session.scalars(select(Device.desired_state)))
    sections = {str(state["config"]["layers"]) for state in states}
    assert len(states) == 200 and len(sections) == 1


async def test_assigning_a_pushed_bundle_checks_its_config_schema(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    await new_device(client, anon, "pi-1")
    schema = {"type": "object", "properties": {"PORT": {"type": "integer"}}, "required": ["PORT"]}
    pushed = await client.post("/api/v1/bundles", json={**BUNDLE, "config_schema": schema})
    assert pushed.status_code == 201, pushed.text
    path = "/api/v1/bundles/site/versions/1.0.0/assign"
    refused = await client.post(path, json={"devices": ["pi-1"]})
    assert refused.status_code == 422, refused.text
    assert "'PORT' is a required property" in refused.json()["detail"]
    assert await generation(client, "pi-1") == 0
    await patch(client, "/api/v1/config/devices/pi-1", set={"PORT": 8080})
    assert (await client.post(path, json={"devices": ["pi-1"]})).status_code == 200
    wrong = await client.patch("/api/v1/config/devices/pi-1", json={"set": {"PORT": "80"}})
    assert (wrong.status_code, wrong.json()["field"]) == (422, "set.PORT")
    assert "device pi-1 runs site@1.0.0" in wrong.json()["detail"]
