"""Exceptions with the names and hierarchy of E2B's Python SDK.

Where a builtin fits, the class also subclasses it (``TimeoutException`` is a ``TimeoutError``,
``FileNotFoundException`` a ``FileNotFoundError``), so generic handlers catch them too.
``AuthenticationException`` and ``ServiceBusyException`` are *not* ``SandboxException``s, as in E2B.
"""

from dataclasses import dataclass
from typing import Any, Optional


class SandboxException(Exception):
    """Base class of sandbox errors. ``status_code`` is the HTTP status behind it, if any."""

    status_code: Optional[int] = None

    def __init__(self, *args: object, status_code: Optional[int] = None) -> None:
        super().__init__(*args)
        self.status_code = status_code


class TimeoutException(SandboxException, TimeoutError):
    """A request, command or the sandbox itself timed out."""


class InvalidArgumentException(SandboxException, ValueError):
    """An invalid argument was given."""


class NotEnoughSpaceException(SandboxException):
    """The sandbox ran out of disk space."""


class NotFoundException(SandboxException):
    """A resource was not found (base of the more specific not-found errors)."""


class FileNotFoundException(NotFoundException, FileNotFoundError):
    """A file or directory was not found in the sandbox."""


class SandboxNotFoundException(NotFoundException):
    """The sandbox does not exist (or is no longer running)."""


class SandboxNotRunningException(TimeoutException):
    """The sandbox is not running any more (killed, paused or timed out): retrying will not help."""


class SandboxUnreachableException(TimeoutException):
    """The sandbox could not be reached while not confirmed stopped (network down, envd not up)."""


class GuestUnresponsiveException(SandboxException):
    """A paused sandbox cannot be resumed with its memory: its snapshot was taken while envd was
    not responding. Resume it with ``on_resume="reboot"``."""

    code = "sandbox_snapshot_guest_agent_unresponsive"

    def __init__(self, *args: object) -> None:
        super().__init__(*args, status_code=409)


class TemplateException(SandboxException):
    """The template's envd is too old for this SDK."""


class RateLimitException(SandboxException):
    """The API rate limit was exceeded."""

    def __init__(self, *args: object, status_code: Optional[int] = 429) -> None:
        super().__init__(*args, status_code=status_code)


class AuthenticationException(Exception):
    """Authentication failed (missing or wrong API key). Not a ``SandboxException``."""


class ServiceBusyException(Exception):
    """The service is temporarily busy (HTTP 503); retry later. Not a ``SandboxException``."""

    status_code = 503


class GitAuthException(AuthenticationException):
    """A git command of ``sandbox.git`` failed for want of credentials."""


class GitUpstreamException(SandboxException):
    """A git push/pull of ``sandbox.git`` has no upstream branch to use."""


class BuildException(Exception):
    """A template build failed."""


class FileUploadException(BuildException):
    """A file upload of a template build failed."""


class VolumeException(Exception):
    """Base class of volume errors."""


class VolumeNotFoundException(NotFoundException):
    """A volume was not found."""


class VolumePathNotFoundException(NotFoundException):
    """A file or directory was not found inside a volume."""


class SecretException(Exception):
    """Base class of secret errors."""


class SecretNotFoundException(SecretException):
    """A secret was not found."""


@dataclass
class CommandResult:
    """Result of a finished command. ``stdout``/``stderr`` are None when it ran with
    ``retain_output=False``."""

    stderr: Any
    stdout: Any
    exit_code: int
    error: Optional[str]

    @classmethod
    def _of(cls, native: Any, retain_output: bool = True) -> "CommandResult":
        keep = (lambda v: v) if retain_output else (lambda v: None)
        return cls(stderr=keep(native.stderr), stdout=keep(native.stdout), exit_code=native.exit_code, error=native.error)


class CommandExitException(SandboxException, CommandResult):
    """A command exited with a non-zero code; it is also the ``CommandResult``."""

    def __init__(
        self,
        stdout: Any = "",
        stderr: Any = "",
        exit_code: int = 0,
        error: Optional[str] = None,
    ) -> None:
        SandboxException.__init__(self, self._message(exit_code, stderr))
        self.stdout = stdout
        self.stderr = stderr
        self.exit_code = exit_code
        self.error = error

    @staticmethod
    def _message(exit_code: int, stderr: Any) -> str:
        if stderr is None:
            return f"Command exited with code {exit_code}"
        return f"Command exited with code {exit_code} and error:\n{stderr}"

    def __str__(self) -> str:
        return self._message(self.exit_code, self.stderr)

    __repr__ = Exception.__repr__
    __eq__ = Exception.__eq__  # type: ignore[assignment]
    __hash__ = Exception.__hash__  # type: ignore[assignment]


__all__ = [
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
]
