"""Config secrets at rest: AES-256-GCM with a key kept in a file outside the database.

A stolen database (or backup) alone reveals no secret: every stored value is sealed with the
key in `--secrets-key-file` (default `<data dir>/secrets.key`, created 0600 on first start).
Each sealed value is bound to where it belongs (tenant, layer, key) as associated data, so a
value copied into another tenant's row does not open. The key never appears in a log line,
and neither does any value.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12
SEALED_PREFIX = "v1:"


class SecretsKeyError(Exception):
    """The secrets key file is missing, unreadable, malformed or not the key secrets used."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SecretsBox:
    """Seals and opens config secrets with the key from one file."""

    def __init__(self, key: bytes, path: Path) -> None:
        if len(key) != KEY_BYTES:
            raise SecretsKeyError(f"secrets key file {path} must hold {KEY_BYTES} bytes as hex")
        self._aead = AESGCM(key)
        self.path = path

    def seal(self, value: str, context: str) -> str:
        """`value` encrypted for `context` (where it is stored), as printable text."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, value.encode(), context.encode())
        return SEALED_PREFIX + base64.b64encode(nonce + sealed).decode()

    def open(self, sealed: str, context: str) -> str:
        """The clear value of what `seal` made for the same context; a wrong key is named."""
        try:
            raw = base64.b64decode(sealed.removeprefix(SEALED_PREFIX), validate=True)
            clear = self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode())
        except (InvalidTag, binascii.Error, ValueError) as err:
            raise SecretsKeyError(
                f"stored config secrets do not open with the key in {self.path}: it is not the "
                "key they were sealed with (restore the original file, or point "
                "--secrets-key-file / SIGNALBEAM_SECRETS_KEY_FILE at it)"
            ) from err
        return clear.decode()


def load_or_create(path: Path) -> SecretsBox:
    """The box for the key in `path`, creating a new random key (mode 0600) when absent."""
    try:
        if not path.exists():
            return SecretsBox(_create(path), path)
        text = path.read_text().strip()
    except OSError as err:
        raise SecretsKeyError(
            f"cannot read the secrets key file {path}: {err.strerror or err}"
        ) from err
    try:
        key = bytes.fromhex(text)
    except ValueError as err:
        raise SecretsKeyError(
            f"secrets key file {path} does not hold a hex key ({KEY_BYTES} bytes, "
            f"{KEY_BYTES * 2} hex digits)"
        ) from err
    return SecretsBox(key, path)


def _create(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(KEY_BYTES)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key.hex() + "\n")
    return key
