"""One TLS context for all the agent's HTTP clients, made only when something needs TLS.

Each httpx client builds its own context by default, and loading the CA bundle costs about
3 MB the first time and close to 1 MB each time after: real money on an agent whose target
is under 40 MB. A server on plain http (a LAN control plane) and the engine's unix socket
need no TLS at all.
"""

from __future__ import annotations

import ssl

_context: ssl.SSLContext | None = None


def tls_context() -> ssl.SSLContext:
    """The shared verifying context (the CA bundle httpx would use), created once."""
    global _context
    if _context is None:
        import certifi

        _context = ssl.create_default_context(cafile=certifi.where())
    return _context


def verify_for(url: str) -> ssl.SSLContext | bool:
    """The `verify=` for a client that only ever talks to `url`'s origin."""
    return tls_context() if url.lower().startswith("https://") else False
