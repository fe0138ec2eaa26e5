"""Build log entries and ``default_build_logger`` (presentation only: the entries are streamed
by the core)."""

import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Literal, Optional

from .. import _native

LogEntryLevel = Literal["debug", "info", "warn", "error"]


@dataclass
class LogEntry:
    """A single log entry from the template build process."""

    timestamp: datetime
    level: LogEntryLevel
    message: str

    def __post_init__(self):
        self.message = _native.strip_ansi(self.message)

    def __str__(self) -> str:
        return f"[{self.timestamp.isoformat()}] [{self.level}] {self.message}"


@dataclass
class LogEntryStart(LogEntry):
    """Marks the start of a build."""

    level: LogEntryLevel = field(default="debug", init=False)


@dataclass
class LogEntryEnd(LogEntry):
    """Marks the end of a build."""

    level: LogEntryLevel = field(default="debug", init=False)


def _entry(kind: str, timestamp: datetime, level: str, message: str) -> LogEntry:
    if kind == "start":
        return LogEntryStart(timestamp=timestamp, message=message)
    if kind == "end":
        return LogEntryEnd(timestamp=timestamp, message=message)
    return LogEntry(timestamp=timestamp, level=level, message=message)  # type: ignore[arg-type]


_ORDER = {"debug": 0, "info": 1, "warn": 2, "error": 3}
_LABEL = {"error": "ERROR", "warn": "WARN ", "info": "INFO ", "debug": "DEBUG"}
_FRAMES = ["⣾", "⣽", "⣻", "⢿", "⡿", "⣟", "⣯", "⣷"]


class _DefaultBuildLogger:
    def __init__(self, min_level: Optional[LogEntryLevel]):
        self._min = min_level or "info"
        self._start = time.time()
        self._frame = 0
        self._stop: Optional[threading.Event] = None
        self._lock = threading.Lock()

    def _elapsed(self) -> str:
        return f"{time.time() - self._start:.1f}s"

    def _timer(self) -> None:
        if not sys.stdout.isatty():
            return
        with self._lock:
            self._frame += 1
            sys.stdout.write(f"{_FRAMES[self._frame % len(_FRAMES)]} Building {self._elapsed()}\r")
            sys.stdout.flush()

    def __call__(self, log: LogEntry) -> None:
        if isinstance(log, LogEntryStart):
            self._start = time.time()
            if sys.stdout.isatty():
                stop = threading.Event()
                self._stop = stop

                def loop() -> None:
                    while not stop.wait(0.15):
                        self._timer()

                threading.Thread(target=loop, daemon=True).start()
            return
        if isinstance(log, LogEntryEnd):
            if self._stop is not None:
                self._stop.set()
            return
        if _ORDER.get(log.level, 1) < _ORDER[self._min]:
            return
        line = f"{self._elapsed().ljust(5)} | {log.timestamp.strftime('%H:%M:%S')} {_LABEL.get(log.level, 'INFO ')} {log.message}"
        with self._lock:
            print(("\x1b[2K" if sys.stdout.isatty() else "") + line, flush=True)
        self._timer()


def default_build_logger(min_level: Optional[LogEntryLevel] = None) -> Callable[[LogEntry], None]:
    """A logger printing build logs at ``min_level`` (default ``info``) and above, with a
    running timer on a terminal."""
    return _DefaultBuildLogger(min_level)
