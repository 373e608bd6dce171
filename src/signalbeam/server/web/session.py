"""The dashboard session: a signed cookie holding the user's API token and a CSRF secret.

Signing in with a password issues an ordinary API token (as `signalbeam login` does), so the
dashboard needs no table of its own: revoking the token, disabling the user or changing their
role takes effect on the very next page load, and signing out revokes the token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import orjson

from signalbeam.server.runtime import Runtime

COOKIE = "signalbeam_session"
LOGIN_CSRF_COOKIE = "signalbeam_login_csrf"
# The cookie outlives a browser restart for a week; the token behind it expires after 30 days.
MAX_AGE_SECONDS = 7 * 24 * 3600
_KEY_LABEL = "signalbeam-web-session-v1"


@dataclass(frozen=True)
class Session:
    """What the cookie carries: the bearer secret, its token id (when we issued it), CSRF."""

    token: str
    token_id: int | None
    csrf: str


def new_session(token: str, token_id: int | None) -> Session:
    """A session for a freshly authenticated user, with a fresh CSRF secret."""
    return Session(token=token, token_id=token_id, csrf=secrets.token_urlsafe(24))


def _signing_key(runtime: Runtime) -> bytes:
    # Derived from the server's secret key through its keyed hash, so rotating that key
    # signs everyone out and no second secret has to be kept in the data dir.
    return runtime.hasher.hash(_KEY_LABEL).encode()


def _sign(runtime: Runtime, body: bytes) -> str:
    return hmac.new(_signing_key(runtime), body, hashlib.sha256).hexdigest()


def encode(runtime: Runtime, session: Session) -> str:
    """The cookie value: base64 JSON, a dot, and its HMAC."""
    raw = orjson.dumps({"t": session.token, "i": session.token_id, "c": session.csrf})
    body = base64.urlsafe_b64encode(raw).decode()
    return f"{body}.{_sign(runtime, body.encode())}"


def decode(runtime: Runtime, value: str | None) -> Session | None:
    """The session in a cookie value, or None when it is missing, forged or malformed."""
    if not value or "." not in value:
        return None
    body, _, signature = value.rpartition(".")
    if not hmac.compare_digest(_sign(runtime, body.encode()), signature):
        return None
    try:
        data = orjson.loads(base64.urlsafe_b64decode(body.encode()))
        return Session(token=str(data["t"]), token_id=data["i"], csrf=str(data["c"]))
    except (ValueError, KeyError, TypeError):
        return None


def csrf_matches(expected: str, presented: str | None) -> bool:
    """Constant-time check of a submitted CSRF token."""
    return presented is not None and hmac.compare_digest(expected.encode(), presented.encode())
