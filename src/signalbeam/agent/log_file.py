"""The agent's own log file in the state dir, which must not fail louder than the disk does."""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import sys


class StateDirLog(logging.handlers.RotatingFileHandler):
    """A rotating log file that a full or read-only disk silences instead of breaking.

    The standard handler prints a traceback to stderr for every record it cannot write; on a
    full disk that is every record, burying the one line that says what is wrong. This one
    says so once on stderr (which journald keeps elsewhere) and skips records until a write
    works again.
    """

    failing = False
    _failed_now = False

    def emit(self, record: logging.LogRecord) -> None:
        """Write the record; a failed write lands in `handleError`, not on stderr."""
        was_failing, self._failed_now = self.failing, False
        super().emit(record)
        if was_failing and not self._failed_now:
            self.failing = False
            self._say(f"writing {self.baseFilename} works again")

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        """Called by `emit` on a failed write: one line, not a traceback per record."""
        error = sys.exc_info()[1]
        if not isinstance(error, OSError):
            super().handleError(record)
            return
        self._failed_now = True
        if not self.failing:
            self.failing = True
            self._say(f"cannot write {self.baseFilename} ({error}); logging to stderr only")

    def close(self) -> None:
        """Close the file; what a full disk would not take is gone already."""
        with contextlib.suppress(OSError):
            super().close()

    def _say(self, message: str) -> None:
        print(f"signalbeam-agent: {message}", file=sys.stderr, flush=True)
