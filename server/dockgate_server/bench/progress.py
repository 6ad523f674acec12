"""A live progress bar on standard error, in plain text: redrawn in place on a terminal, a line
a second otherwise (so a log stays readable)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]

_WIDTH = 24


class Progress:
    def __init__(self, stream: TextIO | None = None, *, enabled: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.live = self.stream.isatty()
        self.interval = 0.1 if self.live else 1.0
        self._label = ""
        self._drawn = 0

    def start(self, label: str) -> None:
        self._label = label
        self._drawn = 0

    def show(self, fraction: float, calls: int, elapsed: float, errors: int) -> None:
        """Draw the bar: the share of the phase done, its calls, their rate, the errors."""
        if not self.enabled:
            return
        fraction = min(1.0, max(0.0, fraction))
        filled = round(fraction * _WIDTH)
        rate = calls / elapsed if elapsed > 0 else 0.0
        text = (
            f"{self._label:<28} [{'#' * filled}{'.' * (_WIDTH - filled)}] {fraction:4.0%} "
            f"{calls:>9,} calls {rate:>9,.0f}/s {errors:>6,} errors"
        )
        if self.live:
            self.stream.write("\r" + text.ljust(self._drawn))
            self._drawn = len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled and self.live and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
        self._drawn = 0

    def note(self, message: str) -> None:
        """A line of its own (what the harness is doing between phases)."""
        if not self.enabled:
            return
        self.finish()
        self.stream.write(f"{time.strftime('%H:%M:%S')} {message}\n")
        self.stream.flush()
