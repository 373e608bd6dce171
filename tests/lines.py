"""Reading a child process's output line by line, with deadlines and never on a full pipe."""

from __future__ import annotations

import queue
import threading
import time
from typing import IO


class Lines:
    """Lines a background process writes to one pipe, readable with a deadline."""

    def __init__(self, pipe: IO[str] | None) -> None:
        assert pipe is not None
        self._queue: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._reader = threading.Thread(target=self._pump, args=(pipe,), daemon=True)
        self._reader.start()

    def rest(self) -> list[str]:
        """Every line not read yet, once the process has closed the pipe."""
        self._reader.join(timeout=30)
        while not self._queue.empty():
            self.seen.append(self._queue.get())
        return self.seen

    def _pump(self, pipe: IO[str]) -> None:
        for line in pipe:
            self._queue.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        """The first new line containing `text`; fails with everything seen when none comes."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r} within {timeout}s; saw: {self.seen}")
