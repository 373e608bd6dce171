"""App artifacts by URL or from the control plane: what parses, and digests that must not move."""

from __future__ import annotations

from typing import Any

import pytest

from signalbeam.domain.errors import InvalidInput
from signalbeam.protocol.bundle_v1 import parse_bundle, unit_fingerprint

SHA = "a" * 64


def bundle(artifact: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "a",
        "version": "1.0.0",
        "apps": [{"name": "x", "artifact": artifact, "command": ["./x"]}],
    }


def test_url_bundles_keep_the_digest_and_fingerprint_they_had() -> None:
    # Computed with the spec before `url` became optional and `name` appeared: a change here
    # would make every device replace apps whose bundle did not change.
    spec = parse_bundle(bundle({"url": "http://h/x", "sha256": SHA}))
    assert spec.digest() == (
        "sha256:a68f9c02d8988700c9ce5f74e431a559384f732c2ba43fb2ae309a9a43f9a566"
    )
    assert unit_fingerprint(spec.apps[0]) == "144b7c01b83c1f88"
    assert spec.canonical()["apps"][0]["artifact"] == {"url": "http://h/x", "sha256": SHA}


def test_control_plane_artifact_keeps_its_name() -> None:
    spec = parse_bundle(bundle({"name": "relay-1.0.tar.gz", "sha256": SHA}))
    artifact = spec.apps[0].artifact
    assert (artifact.url, artifact.sha256, artifact.name) == (None, SHA, "relay-1.0.tar.gz")
    assert spec.canonical()["apps"][0]["artifact"] == {"name": "relay-1.0.tar.gz", "sha256": SHA}


@pytest.mark.parametrize(
    ("artifact", "message"),
    [
        ({"url": "http://h/x"}, "apps[0].artifact.sha256: required"),
        ({"name": "relay"}, "apps[0].artifact.sha256: required"),
        ({"name": "bad name", "sha256": SHA}, "apps[0].artifact.name: 'bad name' is not valid"),
    ],
)
def test_unpinned_or_misnamed_artifacts_are_refused(artifact: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_bundle(bundle(artifact))
    assert caught.value.detail.startswith(message), caught.value.detail
