"""The server's clock: the wall clock, or the wall clock plus an offset read from a file.

Session and login-token expiry read this clock. `dockgate serve --clock-offset-file PATH` lets a
test (or a drill) move every process's time without a restart: the file holds seconds to add.
The file is read by the refresh thread each poll, never on the request path.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

__all__ = ["ServerClock"]

log = logging.getLogger("dockgate.clock")


class ServerClock:
    def __init__(self, offset_file: Path | None = None) -> None:
        self.offset_file = offset_file
        self.offset = 0.0
        self._seen: tuple[int, int] | None = None
        self.refresh()

    def now(self) -> float:
        return time.time() + self.offset

    def refresh(self) -> None:
        """Pick up a changed offset file (a missing or unreadable file means no offset)."""
        if self.offset_file is None:
            return
        try:
            stat = os.stat(self.offset_file)
            seen = (stat.st_mtime_ns, stat.st_size)
            if seen == self._seen:
                return
            text = self.offset_file.read_text().strip()
            self.offset = float(text) if text else 0.0
            self._seen = seen
        except FileNotFoundError:
            self.offset, self._seen = 0.0, None
        except (OSError, ValueError):
            log.warning(
                "clock offset file unreadable", extra={"fields": {"path": str(self.offset_file)}}
            )
