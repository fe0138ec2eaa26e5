"""``sandbox.commands`` (sync and async): thin wrappers over the native ``Commands``."""

from typing import Callable, Dict, List, Literal, Optional, Union, overload

from . import _native
from ._native import CommandResult, ProcessInfo

OutputHandler = Callable[[str], None]


def _data(data: Union[str, bytes]) -> bytes:
    return data.encode() if isinstance(data, str) else bytes(data)


class CommandHandle:
    """A command running in the background."""

    def __init__(self, native: _native.CommandHandle) -> None:
        self._h = native

    @property
    def pid(self) -> int:
        return self._h.pid

    def wait(self) -> CommandResult:
        """Wait for the end; raises ``CommandExitException`` on a non-zero exit code."""
        return self._h.wait().wait()

    def kill(self) -> bool:
        return self._h.kill().wait()

    def disconnect(self) -> None:
        self._h.disconnect()


class Commands:
    def __init__(self, native: _native.Commands) -> None:
        self._c = native

    @overload
    def run(self, cmd: str, background: Union[Literal[False], None] = None, envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, on_stdout: Optional[OutputHandler] = None, on_stderr: Optional[OutputHandler] = None, stdin: Optional[bool] = None, timeout: Optional[float] = 60, request_timeout: Optional[float] = None) -> CommandResult: ...

    @overload
    def run(self, cmd: str, background: Literal[True], envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, on_stdout: Optional[OutputHandler] = None, on_stderr: Optional[OutputHandler] = None, stdin: Optional[bool] = None, timeout: Optional[float] = 60, request_timeout: Optional[float] = None) -> CommandHandle: ...

    def run(self, cmd: str, background: Optional[bool] = None, envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, on_stdout: Optional[OutputHandler] = None, on_stderr: Optional[OutputHandler] = None, stdin: Optional[bool] = None, timeout: Optional[float] = 60, request_timeout: Optional[float] = None) -> Union[CommandResult, CommandHandle]:
        """Run ``cmd`` with ``/bin/bash -l -c``. Raises ``CommandExitException`` on a non-zero
        exit code; with ``background=True`` returns a ``CommandHandle`` at once."""
        r = self._c.run(cmd, bool(background), envs, user, cwd, on_stdout, on_stderr, stdin, timeout).wait()
        return CommandHandle(r) if background else r

    def connect(self, pid: int, timeout: Optional[float] = 60, on_stdout: Optional[OutputHandler] = None, on_stderr: Optional[OutputHandler] = None) -> CommandHandle:
        return CommandHandle(self._c.connect(pid, timeout, on_stdout, on_stderr).wait())

    def list(self) -> List[ProcessInfo]:
        return self._c.list().wait()

    def kill(self, pid: int) -> bool:
        """SIGKILL ``pid``; False when there was no such process."""
        return self._c.kill(pid).wait()

    def send_stdin(self, pid: int, data: Union[str, bytes]) -> None:
        self._c.send_stdin(pid, _data(data)).wait()

    def close_stdin(self, pid: int) -> None:
        self._c.close_stdin(pid).wait()


class AsyncCommandHandle:
    """A command running in the background (async)."""

    def __init__(self, native: _native.CommandHandle) -> None:
        self._h = native

    @property
    def pid(self) -> int:
        return self._h.pid

    async def wait(self) -> CommandResult:
        return await self._h.wait().awaitable()

    async def kill(self) -> bool:
        return await self._h.kill().awaitable()

    def disconnect(self) -> None:
        self._h.disconnect()


class AsyncCommands:
    def __init__(self, native: _native.Commands) -> None:
        self._c = native

    async def run(self, cmd: str, background: Optional[bool] = None, envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, on_stdout: Optional[OutputHandler] = None, on_stderr: Optional[OutputHandler] = None, stdin: Optional[bool] = None, timeout: Optional[float] = 60, request_timeout: Optional[float] = None) -> Union[CommandResult, AsyncCommandHandle]:
        r = await self._c.run(cmd, bool(background), envs, user, cwd, on_stdout, on_stderr, stdin, timeout).awaitable()
        return AsyncCommandHandle(r) if background else r

    async def connect(self, pid: int, timeout: Optional[float] = 60, on_stdout: Optional[OutputHandler] = None, on_stderr: Optional[OutputHandler] = None) -> AsyncCommandHandle:
        return AsyncCommandHandle(await self._c.connect(pid, timeout, on_stdout, on_stderr).awaitable())

    async def list(self) -> List[ProcessInfo]:
        return await self._c.list().awaitable()

    async def kill(self, pid: int) -> bool:
        return await self._c.kill(pid).awaitable()

    async def send_stdin(self, pid: int, data: Union[str, bytes]) -> None:
        await self._c.send_stdin(pid, _data(data)).awaitable()

    async def close_stdin(self, pid: int) -> None:
        await self._c.close_stdin(pid).awaitable()
