"""Artifact names and digests: what an operator may call an upload, and how a digest is written."""

from __future__ import annotations

import re

from signalbeam.domain.errors import InvalidInput

ARTIFACT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"
# What `check_sha256` reads: any case, with or without the `sha256:` prefix.
DIGEST_PATTERN = r"^(sha256:)?[0-9a-fA-F]{64}$"
# What a removal names: an upload's name, or a digest.
REF_PATTERN = r"^(sha256:[0-9a-fA-F]{64}|[A-Za-z0-9][A-Za-z0-9._+-]{0,127})$"
_NAME = re.compile(ARTIFACT_NAME_PATTERN)
_SHA256 = re.compile(SHA256_PATTERN)


def is_sha256(text: str) -> bool:
    """True for 64 lower-case hex digits, the only way digests are written here."""
    return bool(_SHA256.fullmatch(text))


def check_name(name: str, field: str = "name") -> str:
    """`name` when it can name an artifact; an error saying how to write one otherwise.

    A name that looks like a digest is refused, so `rm X` and `{sha256: X}` are never ambiguous.
    """
    if not _NAME.fullmatch(name):
        raise InvalidInput(
            f"{field}: {name[:140]!r} is not a valid artifact name (letters, digits, dots, "
            "dashes, underscores and plus signs, at most 128, starting with a letter or digit)",
            field=field,
        )
    if is_sha256(name):
        raise InvalidInput(
            f"{field}: an artifact name must not look like a sha256 digest; pick a name "
            "such as relay-1.2.tar.gz",
            field=field,
        )
    return name


def check_sha256(text: str, field: str = "sha256") -> str:
    """`text` lower-cased when it is a sha256 in hex; an error saying how to write one otherwise."""
    digest = text.strip().lower().removeprefix("sha256:")
    if not is_sha256(digest):
        raise InvalidInput(
            f"{field}: {text[:80]!r} is not a sha256 digest (64 hex digits, as printed by "
            "sha256sum)",
            field=field,
        )
    return digest
