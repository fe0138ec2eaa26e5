"""Exceptions with the names and hierarchy of E2B's Python SDK.

Where a builtin fits, the class also subclasses it (``TimeoutException`` is a ``TimeoutError``,
``FileNotFoundException`` a ``FileNotFoundError``), so generic handlers catch them too.
``AuthenticationException`` and ``ServiceBusyException`` are *not* ``SandboxException``s, as in E2B.
"""

from typing import Optional


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


class CommandExitException(SandboxException):
    """A command exited with a non-zero code; carries its ``stdout``, ``stderr`` and ``exit_code``."""

    def __init__(
        self,
        stdout: str = "",
        stderr: str = "",
        exit_code: int = 0,
        error: Optional[str] = None,
    ) -> None:
        super().__init__(f"Command exited with code {exit_code} and error:\n{stderr}")
        self.stdout = stdout
        self.stderr = stderr
        self.exit_code = exit_code
        self.error = error


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
]
