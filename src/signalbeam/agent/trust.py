"""The keys this device accepts bundles from: pinned at enrollment, changed only when signed.

`trust.json` in the state dir (mode 0600) holds the current trust statement and the
signatures that vouched for it. `cryptography` is imported only when a bundle is checked,
so an agent with nothing to run pays nothing for it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from signalbeam.agent.identity import read_json, write_json

if TYPE_CHECKING:
    from signalbeam.protocol.signing import Trust

log = logging.getLogger(__name__)
TRUST_FILE = "trust.json"


def pin(state_dir: Path, document: dict[str, Any] | None) -> None:
    """Keep the trust statement enrollment handed out (or forget it for an old server)."""
    path = state_dir / TRUST_FILE
    if document is None:
        path.unlink(missing_ok=True)
        return
    write_json(path, document)


class TrustStore:
    """The pinned trust set; adopts a newer statement only when a trusted key signed it."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / TRUST_FILE

    def current(self) -> Trust | None:
        from signalbeam.protocol.signing import SignatureError, Trust

        document = read_json(self.path)
        if not isinstance(document, dict) or not isinstance(document.get("statement"), dict):
            return None
        try:
            return Trust.from_statement(document["statement"])
        except SignatureError as err:
            log.error("%s is damaged (%s); register the agent again", self.path, err.reason)
            return None

    def check(self, desired: dict[str, Any], bundle: dict[str, Any], ref: str) -> str:
        """Verify a desired bundle document; the signer's key id, or `SignatureError`."""
        from signalbeam.protocol.signing import SignatureError, adopt, manifest_payload, verify

        trust = self.current()
        offered = desired.get("trust")
        if trust is None:
            raise SignatureError(
                "signature verification failed (no trusted keys pinned; register the agent "
                "again to pin the server's keys)"
            )
        if isinstance(offered, dict) and isinstance(offered.get("statement"), dict):
            newer = adopt(trust, offered["statement"], _list(offered.get("signatures")))
            if newer.version > trust.version:
                write_json(self.path, offered)
                log.info("trust statement v%d adopted", newer.version)
                trust = newer
        signer = verify(trust, manifest_payload(bundle), _list(desired.get("signatures")), ref)
        return signer.key_id


def _list(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
