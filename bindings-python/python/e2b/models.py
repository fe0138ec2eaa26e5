"""Plain data types of the public API that are not returned by the native module."""

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Dict, List, Optional


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
