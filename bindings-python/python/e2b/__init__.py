"""E2B-compatible sandboxes: ``from e2b import Sandbox, AsyncSandbox``.

With no E2B configuration (no ``E2B_API_KEY``, ``E2B_API_URL``, ``E2B_DOMAIN``,
``E2B_SANDBOX_URL``), the client uses a local sandboxd at ``http://127.0.0.1:49982``
(``SANDBOXD_URL``) and starts it in the background when none runs. With ``E2B_API_KEY`` set it
talks to E2B's cloud.
"""

import os as _os

from . import _native
from ._native import (
    CommandResult,
    EntryInfo,
    ProcessInfo,
    SandboxInfo,
    SnapshotInfo,
    WriteInfo,
)
from .commands import AsyncCommandHandle, AsyncCommands, CommandHandle, Commands, OutputHandler
from .exceptions import (
    AuthenticationException,
    CommandExitException,
    FileNotFoundException,
    InvalidArgumentException,
    NotEnoughSpaceException,
    NotFoundException,
    RateLimitException,
    SandboxException,
    SandboxNotFoundException,
    ServiceBusyException,
    TemplateException,
    TimeoutException,
)
from .files import AsyncFilesystem, Filesystem, WriteData
from .models import FileType, SandboxQuery, SandboxState
from .paginator import (
    AsyncSandboxPaginator,
    AsyncSnapshotPaginator,
    SandboxPaginator,
    SnapshotPaginator,
)
from .sandbox import Sandbox
from .sandbox_async import AsyncSandbox

__version__ = _native.__version__

# A sandboxd shipped inside the package (bin/sandboxd) is offered to the embedded default.
_bundled = _os.path.join(_os.path.dirname(__file__), "bin", "sandboxd")
if _os.path.isfile(_bundled):
    if not _os.access(_bundled, _os.X_OK):
        try:
            _os.chmod(_bundled, 0o755)
        except OSError:
            pass
    _native.register_sandboxd_launcher(_bundled)

__all__ = [
    "Sandbox",
    "AsyncSandbox",
    "SandboxInfo",
    "SnapshotInfo",
    "CommandResult",
    "ProcessInfo",
    "EntryInfo",
    "WriteInfo",
    "WriteData",
    "FileType",
    "SandboxQuery",
    "SandboxState",
    "Commands",
    "AsyncCommands",
    "CommandHandle",
    "AsyncCommandHandle",
    "OutputHandler",
    "Filesystem",
    "AsyncFilesystem",
    "SandboxPaginator",
    "SnapshotPaginator",
    "AsyncSandboxPaginator",
    "AsyncSnapshotPaginator",
    "SandboxException",
    "TimeoutException",
    "InvalidArgumentException",
    "NotEnoughSpaceException",
    "NotFoundException",
    "FileNotFoundException",
    "SandboxNotFoundException",
    "TemplateException",
    "RateLimitException",
    "AuthenticationException",
    "ServiceBusyException",
    "CommandExitException",
]
