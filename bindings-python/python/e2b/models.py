"""Plain data types of the public API that are not returned by the native module."""

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Dict, List, Optional


class FileType(str, Enum):
    """Type of a filesystem entry; compares equal to the strings ``EntryInfo.type`` holds."""

    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"


class SandboxState(str, Enum):
    RUNNING = "running"
    PAUSED = "paused"


@dataclass
class SandboxQuery:
    """Filter for ``Sandbox.list``."""

    metadata: Optional[Dict[str, str]] = None
    state: Optional[List[SandboxState]] = None
    started_after: Optional[datetime] = None
    template: Optional[str] = None


class FilesystemEventType(str, Enum):
    """Kind of change reported by ``watch_dir``."""

    CHMOD = "chmod"
    CREATE = "create"
    REMOVE = "remove"
    RENAME = "rename"
    WRITE = "write"


@dataclass
class FilesystemEvent:
    """One change in a watched directory: ``name`` is relative to it; ``entry`` is set when
    watched with ``include_entry=True`` (and the entry still exists)."""

    name: str
    type: FilesystemEventType
    entry: Optional[Any] = None


@dataclass
class PtySize:
    """Terminal size in character cells."""

    rows: int
    cols: int


def _event(native: Any) -> FilesystemEvent:
    return FilesystemEvent(name=native.name, type=FilesystemEventType(native.type), entry=native.entry)


@dataclass
class SandboxMetrics:
    """One metrics sample of a sandbox (bytes for memory and disk)."""

    cpu_count: int
    cpu_used_pct: float
    disk_total: int
    disk_used: int
    mem_total: int
    mem_used: int
    mem_cache: int
    timestamp: datetime
