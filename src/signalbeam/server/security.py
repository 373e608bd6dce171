"""Secrets: generation, keyed hashing for tokens, argon2 for passwords; never stored in clear."""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

API_TOKEN_PREFIX = "sbu_"  # noqa: S105 - a prefix, not a secret
ENROLLMENT_TOKEN_PREFIX = "sbe_"  # noqa: S105 - a prefix, not a secret
DEVICE_CREDENTIAL_PREFIX = "sbd_"

_password_hasher = PasswordHasher()


@functools.cache
def _dummy_password_hash() -> str:
    # Verified against when the user does not exist, so timing does not reveal that.
    return _password_hasher.hash("signalbeam-no-such-user")


def new_secret(prefix: str) -> str:
    """A random bearer secret with a prefix that says what kind it is (and helps secret scanners)."""
    return prefix + secrets.token_urlsafe(32)


class TokenHasher:
    """Keyed hash of bearer secrets: a stolen database alone cannot verify guessed tokens."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("the server secret key must be at least 32 bytes")
        self._key = key

    def hash(self, secret: str) -> str:
        """Hex HMAC-SHA256 of the secret, used as the lookup key in the database."""
        return hmac.new(self._key, secret.encode(), hashlib.sha256).hexdigest()

    def verify(self, secret: str, expected_hash: str) -> bool:
        """Constant-time comparison of a presented secret with a stored hash."""
        return hmac.compare_digest(self.hash(secret), expected_hash)


def load_or_create_key(path: Path) -> bytes:
    """The server's secret key from the data dir, created with mode 0600 on first start."""
    if path.exists():
        return bytes.fromhex(path.read_text().strip())
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key.hex() + "\n")
    return key


def hash_password(password: str) -> str:
    """Argon2id hash of a password."""
    return _password_hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    """True when the password matches; spends the same time when there is no user."""
    try:
        return _password_hasher.verify(password_hash or _dummy_password_hash(), password) and (
            password_hash is not None
        )
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
