"""The agent's bundle spec (`agent/spec.py`) reads every bundle the server accepts exactly as
the server's `protocol/bundle_v1.py` does: same canonical form and digest (signatures and
digest checks depend on it), same unit fingerprints (a difference would restart every unit
after an agent upgrade), same health checks; and it refuses what the server refuses.

One deliberate difference: the server also accepts the Python spellings `exec_` and
`running_for` (it never hands them out: the canonical form uses `exec` and `running-for`).
Patterns, durations and the cross-field checks both sides share from `protocol/spec_rules.py`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signalbeam.agent import spec
from signalbeam.domain.errors import InvalidInput
from signalbeam.domain.semver import SEMVER_PATTERN
from signalbeam.protocol import bundle_v1
from tests.agent.bundle_support import Artifact, app_bundle
from tests.agent.schema_documents import single_steps
from tests.agent.test_container_bundles import site
from tests.protocol.test_bundle_spec import example

README = Path(__file__).parents[2] / "README.md"
SHA = "ab" * 32
thorough = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def readme_bundles() -> list[dict[str, Any]]:
    """The bundles the README shows (YAML blocks with a name and a version)."""
    blocks = re.findall(r"```yaml\n(.*?)```", README.read_text(), re.DOTALL)
    documents = [yaml.safe_load(block) for block in blocks]
    return [d for d in documents if isinstance(d, dict) and {"name", "version"} <= set(d)]


EXAMPLES = [
    *readme_bundles(),
    example(),
    app_bundle("1.0.0", Artifact("http://127.0.0.1:9/relay.tar.gz", SHA), 9000, Path("/tmp/f")),
    site("1.1.0", "127.0.0.1:5000/sb/site:1.1.0"),
    {
        "name": "a",
        "version": "1.0.0",
        "apps": [{"name": "x", "artifact": {"name": "x.bin", "sha256": SHA}, "command": ["./x"]}],
    },
]


def assert_read_alike(server: bundle_v1.BundleSpec, agent: spec.BundleSpec) -> None:
    assert agent.canonical() == server.canonical()
    assert agent.digest() == server.digest()
    assert agent.ref == server.ref
    assert [(u.kind, u.name) for u in agent.units] == [(u.kind, u.name) for u in server.units]
    for ours, theirs in zip(agent.units, server.units, strict=True):
        assert spec.unit_fingerprint(ours) == bundle_v1.unit_fingerprint(theirs)
        # The declared check or the default, as written out (durations to 6 digits, as the
        # canonical form has them).
        theirs_check = theirs.health_check.model_dump(mode="json", by_alias=True)
        assert spec.plain(ours.health_check) == theirs_check
        assert ours.health_check.probe == theirs.health_check.probe


def read_by_both(document: Any) -> tuple[Any, Any]:
    """(server's reading, agent's reading), None where one refuses."""
    readings: list[Any] = []
    for parse in (bundle_v1.parse_bundle, spec.parse_bundle):
        try:
            readings.append(parse(document))
        except InvalidInput:
            readings.append(None)
    return readings[0], readings[1]


def test_the_examples_are_examples() -> None:
    assert len(readme_bundles()) >= 1, "the README's bundle example was not found"


@pytest.mark.parametrize("document", EXAMPLES, ids=[d["name"] for d in EXAMPLES])
def test_example_bundles_read_alike_as_pushed_and_as_handed_out(document: dict[str, Any]) -> None:
    server = bundle_v1.parse_bundle(document)
    assert_read_alike(server, spec.parse_bundle(document))
    # What a device actually receives is the canonical form, through JSON.
    handed_out = json.loads(json.dumps(server.canonical()))
    assert_read_alike(server, spec.parse_bundle(handed_out))


def names() -> st.SearchStrategy[str]:
    return st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)


def durations() -> st.SearchStrategy[Any]:
    units = st.sampled_from(["", "s", "ms", "m"])
    return st.one_of(
        st.integers(1, 86400),
        st.floats(min_value=1e-6, max_value=86400),
        st.builds(lambda n, u: f"{n}{u}", st.integers(1, 999), units),
        st.builds(lambda n: f"{n}h", st.integers(1, 24)),
        st.builds(lambda x: f"{x:.3f}s", st.floats(min_value=0.001, max_value=9999)),
    )


def health_checks() -> st.SearchStrategy[dict[str, Any]]:
    probes = st.one_of(
        st.builds(
            lambda u: {"http": u}, st.from_regex(r"https?://[a-z0-9.:/-]{1,30}", fullmatch=True)
        ),
        st.builds(lambda p: {"tcp": p}, st.integers(1, 65535)),
        st.builds(
            lambda h, p: {"tcp": f"{h}:{p}"},
            st.sampled_from(["127.0.0.1", "db", "[::1]"]),
            st.integers(1, 99999),
        ),
        st.builds(lambda a: {"exec": a}, st.lists(st.text(max_size=6), min_size=1, max_size=3)),
        st.builds(lambda d: {"running-for": d}, durations()),
    )
    extras = st.fixed_dictionaries({}, optional={"timeout": durations(), "interval": durations()})
    return st.builds(lambda probe, more: {**probe, **more}, probes, extras)


def units() -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    env = st.dictionaries(
        st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True),
        st.text(max_size=8),
        max_size=3,
    )
    common = {"env": env, "health": st.one_of(st.none(), health_checks())}
    container = st.fixed_dictionaries(
        {"image": st.from_regex(r"[a-z0-9./:@-]{1,30}", fullmatch=True)},
        optional={
            **common,
            "command": st.one_of(st.none(), st.lists(st.text(max_size=6), max_size=3)),
            "ports": st.lists(
                st.from_regex(r"(127\.0\.0\.1:)?\d{1,5}:\d{1,5}(/(tcp|udp))?", fullmatch=True),
                max_size=2,
            ),
            "volumes": st.lists(
                st.from_regex(r"/[a-z]{1,6}:/[a-z]{0,6}(:(ro|rw))?", fullmatch=True), max_size=2
            ),
            "restart": st.sampled_from(["no", "always", "unless-stopped", "on-failure"]),
            # start-first beside host ports is refused: see the refused cases.
            "update_order": st.just("stop-first"),
        },
    )
    artifact = st.fixed_dictionaries(
        {"sha256": st.from_regex(r"[0-9a-f]{64}", fullmatch=True)},
        optional={
            "url": st.from_regex(r"https?://[a-z0-9.]{1,12}/[a-z0-9./-]{0,20}", fullmatch=True),
            "name": st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,20}", fullmatch=True),
        },
    )
    app = st.fixed_dictionaries(
        {"artifact": artifact, "command": st.lists(st.text(max_size=6), min_size=1, max_size=3)},
        optional={**common, "update_order": st.sampled_from(["start-first", "stop-first"])},
    )
    return st.one_of(st.tuples(st.just("containers"), container), st.tuples(st.just("apps"), app))


@st.composite
def bundles(draw: st.DrawFn) -> dict[str, Any]:
    """Valid bundle documents, written the many ways people write them."""
    unit_names = draw(st.lists(names(), min_size=1, max_size=4, unique=True))
    document: dict[str, Any] = {
        "name": draw(names()),
        "version": draw(st.from_regex(SEMVER_PATTERN, fullmatch=True)),
    }
    if draw(st.booleans()):
        document["description"] = draw(st.text(max_size=20))
    for name in unit_names:
        where, unit = draw(units())
        document.setdefault(where, []).append({"name": name, **unit})
    return document


@thorough
@given(document=bundles())
def test_generated_bundles_read_alike_as_pushed_and_as_handed_out(document: dict[str, Any]) -> None:
    server, agent = read_by_both(document)
    assert server is not None, "the strategy should only make bundles the server accepts"
    assert agent is not None, "the agent refuses a bundle the server accepts"
    assert_read_alike(server, agent)
    handed_out = json.loads(json.dumps(server.canonical()))
    assert_read_alike(server, spec.parse_bundle(handed_out))


@thorough
@given(document=bundles())
def test_each_step_past_a_limit_is_judged_alike(document: dict[str, Any]) -> None:
    for where, variant in single_steps(bundle_v1.BundleSpec.model_json_schema(), document):
        server, agent = read_by_both(variant)
        assert (server is None) == (agent is None), (
            f"at {where}: server {'refuses' if server is None else 'accepts'}, "
            f"agent {'refuses' if agent is None else 'accepts'}"
        )
        if server is not None:
            assert_read_alike(server, agent)


def bundle_with(**unit: Any) -> dict[str, Any]:
    return {"name": "b", "version": "1.0.0", "containers": [{"name": "c", "image": "i", **unit}]}


@pytest.mark.parametrize(
    "document",
    [
        {"name": "b\n", "version": "1.0.0", "containers": [{"name": "c", "image": "i"}]},
        {"name": "b", "version": "1.0.0\n", "containers": [{"name": "c", "image": "i"}]},
        bundle_with(image="i\n"),
        bundle_with(env={"A\n": "x"}),
        bundle_with(ports=["80:80\n"]),
        bundle_with(health={"tcp": 0}),
        bundle_with(health={"tcp": 65536}),
        bundle_with(health={"tcp": "9000"}),
        bundle_with(health={"tcp": 9000, "http": "http://x"}),
        bundle_with(health={"timeout": "5s"}),
        bundle_with(health={"running-for": "soon"}),
        bundle_with(health={"running-for": True}),
        bundle_with(health={"running-for": "25h"}),
        bundle_with(restart="sometimes"),
        bundle_with(update_order="sometimes"),
        bundle_with(ports=["80:80"], update_order="start-first"),
        {"name": "b", "version": "1.0.0"},
        {"name": "b", "version": "1.0.0", "containers": [{"name": "c", "image": "i"}] * 2},
        {
            "name": "b",
            "version": "1.0.0",
            "apps": [{"name": "c", "artifact": {"sha256": SHA + "\n"}, "command": ["x"]}],
        },
        [],
    ],
)
def test_what_the_server_refuses_the_agent_refuses(document: Any) -> None:
    assert read_by_both(document) == (None, None)


def test_a_tiny_duration_the_server_writes_reads_back_on_both_sides() -> None:
    server = bundle_v1.parse_bundle(bundle_with(health={"running-for": 0.00005}))
    handed_out = server.canonical()
    assert handed_out["containers"][0]["health"]["running-for"] == "5e-05s"
    assert_read_alike(server, spec.parse_bundle(handed_out))
    assert bundle_v1.parse_bundle(handed_out).digest() == server.digest()


@pytest.mark.parametrize("kind", ["containers", "apps"])
@pytest.mark.parametrize("count", [64, 65])
def test_unit_count_limits_agree(kind: str, count: int) -> None:
    # Distinct names: the generic single steps repeat one unit, which trips the unique-name
    # rule before the count limit.
    unit = (
        {"image": "i"} if kind == "containers" else {"artifact": {"sha256": SHA}, "command": ["x"]}
    )
    document = {
        "name": "b",
        "version": "1.0.0",
        kind: [{"name": f"u{n}", **unit} for n in range(count)],
    }
    server, agent = read_by_both(document)
    assert (server is None, agent is None) == (count > 64, count > 64)
