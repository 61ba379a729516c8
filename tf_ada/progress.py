"""One line of progress per interval: done/total, rate and ETA. Used by every long job."""
from __future__ import annotations

import sys
import time


class LogStream:
    """A write()-able that hands whole lines to `log` (for `Progress`)."""

    def __init__(self, log):
        self.log = log

    def write(self, text: str) -> None:
        for line in text.splitlines():
            if line.strip():
                self.log(line)

    def flush(self) -> None:
        pass


def _fmt_seconds(s: float) -> str:
    if s != s or s == float("inf"):
        return "?"
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h{m:02d}m{sec:02d}s" if h else f"{m}m{sec:02d}s"


class Progress:
    """Prints `label: done/total (pct) rate unit/s ETA ...` at most every `interval` seconds.

    Args:
      total: amount of work (any unit, e.g. seconds of audio or files).
      label: prefix of each line.
      unit: name of the unit in the rate.
      interval: minimum seconds between lines (the final line is always printed).
    """

    def __init__(self, total: float, label: str, unit: str = "items", interval: float = 5.0, stream=None):
        self.total = float(total)
        self.label = label
        self.unit = unit
        self.interval = interval
        self.stream = stream or sys.stdout
        self.done = 0.0
        self.start = time.monotonic()
        self._last = -float("inf")

    def update(self, amount: float = 1.0, note: str = "") -> None:
        self.done += amount
        now = time.monotonic()
        if now - self._last >= self.interval or self.done >= self.total:
            self._last = now
            self.stream.write(self.line(note) + "\n")
            self.stream.flush()

    def line(self, note: str = "") -> str:
        elapsed = max(time.monotonic() - self.start, 1e-9)
        rate = self.done / elapsed
        remaining = max(self.total - self.done, 0.0) / rate if rate > 0 else float("inf")
        pct = 100.0 * self.done / self.total if self.total else 100.0
        text = (f"{self.label}: {self.done:,.0f}/{self.total:,.0f} {self.unit} ({pct:5.1f}%) "
                f"{rate:,.1f} {self.unit}/s elapsed {_fmt_seconds(elapsed)} ETA {_fmt_seconds(remaining)}")
        return text + (f"  {note}" if note else "")
