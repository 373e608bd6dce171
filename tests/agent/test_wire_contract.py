"""The agent's wire structs (`agent/wire.py`) and the server's models (`protocol/device_v1.py`)
describe the same messages: same fields, same required ones and defaults, and the same
documents accepted and refused, in both directions.

The server's side of each comparison is pydantic as the server uses it: strict about unknown
fields in what agents send. For answers the agent receives, the oracle ignores unknown fields,
as the agent always has, so a newer server can add fields.
"""

from __future__ import annotations

import functools
import inspect
import json
from typing import Any, Literal

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from pydantic_core import to_jsonable_python

from signalbeam.agent import wire
from signalbeam.protocol import device_v1
from tests.agent.schema_documents import documents, single_steps

PAIRS: list[tuple[type[BaseModel], type[msgspec.Struct]]] = [
    (device_v1.Facts, wire.Facts),
    (device_v1.EnrollRequest, wire.EnrollRequest),
    (device_v1.EnrollResponse, wire.EnrollResponse),
    (device_v1.DiskUsage, wire.DiskUsage),
    (device_v1.Heartbeat, wire.Heartbeat),
    (device_v1.ReportedItem, wire.ReportedItem),
    (device_v1.ReportedConfig, wire.ReportedConfig),
    (device_v1.ReportedState, wire.ReportedState),
    (device_v1.SyncRequest, wire.SyncRequest),
    (device_v1.DesiredState, wire.DesiredState),
    (device_v1.ServerHints, wire.ServerHints),
    (device_v1.SyncResponse, wire.SyncResponse),
    (device_v1.AgentEvent, wire.AgentEvent),
    (device_v1.QueuedSample, wire.QueuedSample),
    (device_v1.TelemetryBatch, wire.TelemetryBatch),
    (device_v1.TelemetryAck, wire.TelemetryAck),
    (device_v1.WatchResponse, wire.WatchResponse),
]
# Which way each message travels, stated here rather than read from `wire`, so a struct
# moved to the wrong base class is caught.
SENT = {
    wire.Facts,
    wire.EnrollRequest,
    wire.DiskUsage,
    wire.Heartbeat,
    wire.ReportedConfig,
    wire.ReportedState,
    wire.SyncRequest,
    wire.AgentEvent,
    wire.QueuedSample,
    wire.TelemetryBatch,
}
RECEIVED = {
    wire.EnrollResponse,
    wire.DesiredState,
    wire.ServerHints,
    wire.SyncResponse,
    wire.TelemetryAck,
    wire.WatchResponse,
}
pairs = pytest.mark.parametrize(("model", "struct"), PAIRS, ids=[m.__name__ for m, _ in PAIRS])
near_limits = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
inside_limits = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def server_reads(model: type[BaseModel], struct: type[msgspec.Struct], raw: bytes) -> Any:
    """What pydantic makes of `raw` (None when it refuses), as the agent's oracle."""
    extra: Literal["ignore"] | None = "ignore" if struct in RECEIVED else None
    try:
        return model.model_validate_json(raw, extra=extra)
    except ValidationError:
        return None


def agent_reads(struct: type[msgspec.Struct], raw: bytes) -> Any:
    """What the agent makes of `raw` (None when it refuses)."""
    try:
        return wire.decode(raw, struct)
    except msgspec.ValidationError:
        return None


@functools.cache
def schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()


def test_every_device_api_message_has_an_agent_twin() -> None:
    messages = {
        value
        for value in vars(device_v1).values()
        if inspect.isclass(value)
        and issubclass(value, BaseModel)
        and value.__module__ == device_v1.__name__
        and value is not device_v1.WireModel
    }
    assert messages == {model for model, _ in PAIRS}


@pairs
def test_same_fields_required_fields_and_defaults(
    model: type[BaseModel], struct: type[msgspec.Struct]
) -> None:
    theirs = {info.alias or name: info for name, info in model.model_fields.items()}
    ours = {field.encode_name: field for field in msgspec.structs.fields(struct)}
    assert sorted(ours) == sorted(theirs)
    for name, info in theirs.items():
        field = ours[name]
        assert field.required == info.is_required(), name
        if field.required:
            continue
        default = field.default_factory() if field.default is msgspec.NODEFAULT else field.default
        expected = to_jsonable_python(info.get_default(call_default_factory=True))
        if isinstance(default, msgspec.Struct):
            # A struct that leaves out its defaults encodes as less; compare what it means.
            assert default == wire.convert(expected, type(default)), name
        else:
            assert msgspec.to_builtins(default) == expected, name


@pairs
def test_unknown_fields_policy(model: type[BaseModel], struct: type[msgspec.Struct]) -> None:
    forbids = struct.__struct_config__.forbid_unknown_fields
    if struct in SENT:
        assert forbids and model.model_config.get("extra") == "forbid"
    elif struct in RECEIVED:
        # A newer server may add fields to its answers; the agent ignores them.
        assert not forbids and model.model_config.get("extra") == "forbid"
    else:
        # Report items: the server keeps unknown keys (from newer agents); the agent ignores
        # them when it reads back a status file a newer agent wrote.
        assert struct is wire.ReportedItem
        assert not forbids and model.model_config.get("extra") == "allow"


@pairs
@near_limits
@given(data=st.data())
def test_each_step_past_a_limit_is_judged_alike(
    model: type[BaseModel], struct: type[msgspec.Struct], data: st.DataObject
) -> None:
    document = data.draw(documents(schema(model)), label="document")
    for where, variant in single_steps(schema(model), document):
        raw = json.dumps(variant).encode()
        server, agent = server_reads(model, struct, raw), agent_reads(struct, raw)
        assert (server is None) == (agent is None), (
            f"at {where}: server {'refuses' if server is None else 'accepts'}, "
            f"agent {'refuses' if agent is None else 'accepts'}"
        )
        if agent is not None:
            assert wire.convert(server.model_dump(), struct) == agent, where


@pairs
@inside_limits
@given(data=st.data())
def test_valid_documents_travel_both_ways(
    model: type[BaseModel], struct: type[msgspec.Struct], data: st.DataObject
) -> None:
    document = data.draw(documents(schema(model)), label="document")
    server = model.model_validate_json(json.dumps(document))
    agent = wire.decode(json.dumps(document), struct)
    assert wire.convert(server.model_dump(), struct) == agent
    # What the agent writes, the server reads as the same message.
    again = model.model_validate_json(wire.encode(agent))
    assert wire.convert(again.model_dump(), struct) == agent


@pytest.mark.parametrize(
    "answer",
    [
        {"status": "maybe", "generation": "x"},
        [1, 2, 3],
        {"status": "changed", "generation": 1, "hints": {"sync_interval_seconds": 1}},
        {
            "status": "unchanged",
            "generation": 1,
            "desired": None,
            "hints": {},
            "server_time": "2026-01-01T00:00:00Z",
        },
        {
            "status": "unchanged",
            "generation": 1,
            "desired": None,
            "hints": {"sync_interval_seconds": 1},
            "server_time": "soon",
        },
    ],
)
def test_wrong_shapes_are_refused_by_both(answer: Any) -> None:
    raw = json.dumps(answer).encode()
    assert server_reads(device_v1.SyncResponse, wire.SyncResponse, raw) is None
    assert agent_reads(wire.SyncResponse, raw) is None


def test_lax_numbers_are_read_alike() -> None:
    # Pydantic's lax mode reads "5" and 5.0 as the integer 5; the agent does the same.
    raw = b'{"samples_through": "5", "events_through": 7.0}'
    server = server_reads(device_v1.TelemetryAck, wire.TelemetryAck, raw)
    assert server is not None
    assert agent_reads(wire.TelemetryAck, raw) == wire.TelemetryAck(
        samples_through=5, events_through=7
    )
