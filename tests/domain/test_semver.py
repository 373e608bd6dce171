"""Semantic versions: parsing and precedence as semver 2.0.0 defines them."""

from __future__ import annotations

import pytest

from signalbeam.domain.errors import InvalidInput
from signalbeam.domain.semver import parse_version, split_ref


def test_precedence_follows_semver() -> None:
    texts = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.2.0",
        "1.9.0",
        "1.10.0",
        "2.0.0",
    ]
    versions = [parse_version(t) for t in texts]
    assert sorted(reversed(versions)) == versions
    assert [str(v) for v in versions] == texts


def test_build_metadata_does_not_change_precedence() -> None:
    assert parse_version("1.0.0+build.5") == parse_version("1.0.0+other")
    assert str(parse_version("1.0.0+build.5")) == "1.0.0+build.5"


@pytest.mark.parametrize("text", ["1.2", "v1.2.0", "01.2.0", "1.2.0-", "1.2.0-01", "latest", ""])
def test_not_a_version_is_refused_with_an_example(text: str) -> None:
    with pytest.raises(InvalidInput, match=r"write it like 1\.2\.0") as caught:
        parse_version(text, field="version")
    assert caught.value.field == "version"


def test_refs_split_into_name_and_version() -> None:
    assert split_ref("warehouse-monitor@1.2.0") == ("warehouse-monitor", "1.2.0")
    assert split_ref("warehouse-monitor") == ("warehouse-monitor", None)
    with pytest.raises(InvalidInput, match="NAME@VERSION"):
        split_ref("warehouse-monitor@")
