"""E2B-compatible sandboxes: ``from e2b import Sandbox, AsyncSandbox``.

With no E2B configuration (no ``E2B_API_KEY``, ``E2B_API_URL``, ``E2B_DOMAIN``,
``E2B_SANDBOX_URL``), the client uses a local sandboxd at ``http://127.0.0.1:49982``
(``SANDBOXD_URL``) and starts it in the background when none runs. With ``E2B_API_KEY`` set it
talks to E2B's cloud.
"""

import os as _os

from . import _native
from .exceptions import CommandResult
from ._native import (
    EntryInfo,
    ProcessInfo,
    SandboxInfo,
    SnapshotInfo,
    WriteInfo,
)
from .commands import AsyncCommandHandle, AsyncCommandInputHandle, AsyncCommands, CommandHandle, Commands, OutputHandler
from .exceptions import (
    AuthenticationException,
    BuildException,
    FileUploadException,
    GitAuthException,
    GitUpstreamException,
    GuestUnresponsiveException,
    SandboxNotRunningException,
    SandboxUnreachableException,
    SecretException,
    SecretNotFoundException,
    VolumeException,
    VolumeNotFoundException,
    VolumePathNotFoundException,
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
from .connection_config import ConnectionConfig
from .files import AsyncFilesystem, Filesystem, WriteData, WriteEntry
from .models import FilesystemEvent, FilesystemEventType, FileType, PtySize, SandboxMetrics, SandboxQuery, SandboxState
from .git import AsyncGit, Git, GitBranches, GitFileStatus, GitResetMode, GitStatus
from .pty import AsyncPty, Pty
from .watch import AsyncWatchHandle, WatchHandle

from .types import (
    ALL_TRAFFIC,
    ApiParams,
    AsyncWriteData,
    GitHubMcpServer,
    GitHubMcpServerConfig,
    McpServer,
    SandboxInfoLifecycle,
    SandboxLifecycle,
    SandboxListOrder,
    SandboxNetworkOpts,
    SandboxOnResume,
    SandboxOnTimeout,
    SandboxIamToken,
    SandboxIamTokenType,
    SandboxNetworkTransform,
    SandboxNetworkTransformContext,
    SandboxNetworkTransformResolver,
    SandboxNetworkRule,
    SandboxNetworkRuleInfo,
    SandboxNetworkRules,
    SandboxNetworkSelectorContext,
    SandboxNetworkSelector,
    SandboxEgressProxyTLSOpts,
    SandboxEgressProxyOpts,
    SandboxEgressProxyTLSInfo,
    SandboxEgressProxyInfo,
    SandboxIamOpts,
    SandboxNetworkUpdate,
    SandboxNetworkInfo,
    HttpVersion,
    ProxyTypes,
    SnapshotMode,
    Username,
    get_signature,
)

#: Output types of command handles, as E2B names them.
Stdout = str
Stderr = str
PtyOutput = bytes
from .paginator import (
    AsyncSandboxPaginator,
    AsyncSnapshotPaginator,
    SandboxPaginator,
    SnapshotPaginator,
)
from .sandbox import Sandbox
from .secret import AsyncSecret, AsyncSecretPaginator, Secret, SecretInfo, SecretPaginator
from .template.build import AsyncTemplate, Template
from .template.dockerfile_parser import DockerfileSyntaxError
from .template.logger import LogEntry, LogEntryEnd, LogEntryLevel, LogEntryStart, default_build_logger
from .template.main import TemplateBase, TemplateClass
from .template.readycmd import ReadyCmd, wait_for_file, wait_for_port, wait_for_process, wait_for_timeout, wait_for_url
from .template.types import (
    BuildInfo,
    BuildStatusReason,
    CopyItem,
    TemplateBuildStatus,
    TemplateBuildStatusResponse,
    TemplateTag,
    TemplateTagInfo,
)
from .sandbox_async import AsyncSandbox
from .client import E2B, E2BClientParams
from .volume import (
    AsyncVolume,
    Volume,
    VolumeAndToken,
    VolumeApiParams,
    VolumeConnectionConfig,
    VolumeEntryStat,
    VolumeFileType,
    VolumeInfo,
)

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
    "GitHubMcpServer",
    "GitHubMcpServerConfig",
    "McpServer",
    "WriteInfo",
    "WriteData",
    "WriteEntry",
    "ConnectionConfig",
    "FilesystemEvent",
    "FilesystemEventType",
    "PtySize",
    "PtyOutput",
    "Stdout",
    "Stderr",
    "Pty",
    "AsyncPty",
    "Git",
    "AsyncGit",
    "GitStatus",
    "GitBranches",
    "GitFileStatus",
    "GitResetMode",
    "WatchHandle",
    "AsyncWatchHandle",
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
    "SandboxNotRunningException",
    "SandboxUnreachableException",
    "GuestUnresponsiveException",
    "GitAuthException",
    "GitUpstreamException",
    "BuildException",
    "FileUploadException",
    "VolumeException",
    "VolumeNotFoundException",
    "VolumePathNotFoundException",
    "SecretException",
    "SecretNotFoundException",
    "E2B",
    "E2BClientParams",
    "Volume",
    "AsyncVolume",
    "VolumeAndToken",
    "VolumeApiParams",
    "VolumeConnectionConfig",
    "VolumeEntryStat",
    "VolumeFileType",
    "VolumeInfo",
    "Secret",
    "AsyncSecret",
    "SecretInfo",
    "SecretPaginator",
    "AsyncSecretPaginator",
    "SandboxIamToken",
    "SandboxIamTokenType",
    "SandboxNetworkTransform",
    "SandboxNetworkTransformContext",
    "SandboxNetworkTransformResolver",
    "SandboxNetworkRule",
    "SandboxNetworkRuleInfo",
    "SandboxNetworkRules",
    "SandboxNetworkSelectorContext",
    "SandboxNetworkSelector",
    "SandboxEgressProxyTLSOpts",
    "SandboxEgressProxyOpts",
    "SandboxEgressProxyTLSInfo",
    "SandboxEgressProxyInfo",
    "SandboxIamOpts",
    "SandboxNetworkUpdate",
    "SandboxNetworkInfo",
    "HttpVersion",
    "ProxyTypes",
    "ALL_TRAFFIC",
    "SnapshotMode",
    "SandboxOnResume",
    "SandboxOnTimeout",
    "SandboxLifecycle",
    "SandboxNetworkOpts",
    "SandboxListOrder",
    "Username",
    "ApiParams",
    "AsyncWriteData",
    "get_signature",
    "SandboxMetrics",
    "AsyncCommandInputHandle",
    "SandboxInfoLifecycle",
    "Template",
    "AsyncTemplate",
    "TemplateBase",
    "TemplateClass",
    "CopyItem",
    "BuildInfo",
    "BuildStatusReason",
    "TemplateBuildStatus",
    "TemplateBuildStatusResponse",
    "TemplateTag",
    "TemplateTagInfo",
    "ReadyCmd",
    "wait_for_file",
    "wait_for_url",
    "wait_for_port",
    "wait_for_process",
    "wait_for_timeout",
    "LogEntry",
    "LogEntryStart",
    "LogEntryEnd",
    "LogEntryLevel",
    "default_build_logger",
    "DockerfileSyntaxError",
]


def __getattr__(name: str):
    # E2B's SDK also exports its generated REST client (`ApiClient`, an httpx client for the
    # functions under `e2b.api.client`). This SDK makes every request in its Rust core and has
    # no such client: importing it fails with the reason instead of a bare "cannot import".
    if name == "ApiClient":
        raise ImportError(
            "e2b.ApiClient (the official SDK's generated REST client) is not part of this SDK, whose "
            "requests go through its Rust core: use Sandbox, Template, Volume and Secret, or call the "
            "REST API (the paths of E2B's OpenAPI spec) with any HTTP client",
            name=name,
        )
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
