"""Template build types, as the official SDK names them."""

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import List, Literal, Optional, TypedDict, Union

try:
    from typing import NotRequired
except ImportError:  # Python < 3.11: the optional keys are plain ones there
    NotRequired = Union  # type: ignore

from .logger import LogEntry


class TemplateBuildStatus(str, Enum):
    """Status of a template build."""

    BUILDING = "building"
    WAITING = "waiting"
    READY = "ready"
    ERROR = "error"


@dataclass
class BuildStatusReason:
    """Reason for the current build status (typically for errors)."""

    message: str
    step: Optional[str] = None
    log_entries: List[LogEntry] = field(default_factory=list)


@dataclass
class TemplateBuildStatusResponse:
    """Response from getting build status."""

    build_id: str
    template_id: str
    status: TemplateBuildStatus
    log_entries: List[LogEntry]
    logs: List[str]
    reason: Optional[BuildStatusReason] = None


@dataclass
class TemplateTagInfo:
    """Information about assigned template tags."""

    build_id: str
    tags: List[str]


@dataclass
class TemplateTag:
    """Detailed information about a single template tag."""

    tag: str
    build_id: str
    created_at: datetime


class InstructionType(str, Enum):
    """Types of instructions that can be used in a template."""

    COPY = "COPY"
    ENV = "ENV"
    RUN = "RUN"
    WORKDIR = "WORKDIR"
    USER = "USER"


class CopyItem(TypedDict):
    """One file/directory copy for ``copy_items``."""

    src: Union[Union[str, Path], List[Union[str, Path]]]
    dest: Union[str, Path]
    forceUpload: NotRequired[Optional[Literal[True]]]
    user: NotRequired[Optional[str]]
    mode: NotRequired[Optional[int]]
    resolveSymlinks: NotRequired[Optional[bool]]
    gzip: NotRequired[Optional[bool]]


@dataclass
class BuildInfo:
    """Information about a built template."""

    template_id: str
    build_id: str
    name: str
    # Deprecated: use name instead
    alias: str
    tags: List[str] = field(default_factory=list)
