"""``sandbox.commands`` (sync and async): thin wrappers over the native ``Commands``.

Signatures are E2B's (tests/parity checks them). ``CommandHandle`` keeps every output chunk
from the start (in the core), so ``wait(on_stdout=...)`` and iteration see all of it."""

from typing import Any, Callable, Dict, Iterable, Iterator, List, Literal, Optional, Tuple, Union, overload

from . import _native
from ._native import ProcessInfo
from ._utils import on_loop
from .exceptions import CommandExitException, CommandResult, InvalidArgumentException

OutputHandler = Callable[[str], None]
PtyOutputHandler = Callable[[bytes], None]


def _data(data: Union[str, bytes]) -> bytes:
    return data.encode() if isinstance(data, str) else bytes(data)


def _result(op: Any, retain_output: bool) -> CommandResult:
    """The Python ``CommandResult`` of a finished native op's value (or its exit exception),
    without output when the command ran with ``retain_output=False``."""
    try:
        return CommandResult._of(op(), retain_output)
    except CommandExitException as e:
        if not retain_output:
            e.stdout = e.stderr = None
        raise


async def _aresult(aw: Any, retain_output: bool) -> CommandResult:
    async def value() -> Any:
        return await aw

    try:
        return CommandResult._of(await value(), retain_output)
    except CommandExitException as e:
        if not retain_output:
            e.stdout = e.stderr = None
        raise


def _stream_all(native: _native.InputStream, data: Iterable[Union[str, bytes]]) -> None:
    if isinstance(data, (str, bytes, bytearray)):
        raise InvalidArgumentException("data must be an iterable of str or bytes chunks, not a single value")
    for chunk in data:
        native.send(_data(chunk))
    native.close().wait()


class AsyncCommandInputHandle:
    """Ordered input to a command or PTY: ``send()`` queues a chunk, ``close()`` waits until
    every chunk was delivered. ``async with`` closes it."""

    def __init__(self, native: _native.InputStream) -> None:
        self._s = native

    async def send(self, data: Union[str, bytes]) -> None:
        self._s.send(_data(data))

    async def close(self) -> None:
        await self._s.close().awaitable()

    async def __aenter__(self) -> "AsyncCommandInputHandle":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


class CommandHandle:
    """A command running in the background. Iterate it for ``(stdout, stderr, pty)`` tuples
    (one of the three set per chunk), or ``wait()`` for the result."""

    def __init__(self, native: _native.CommandHandle, retain_output: bool = True) -> None:
        self._h = native
        self._retain = retain_output

    @property
    def pid(self) -> int:
        return self._h.pid

    def __iter__(self) -> Iterator[Tuple[Optional[str], Optional[str], Optional[bytes]]]:
        cursor = 0
        while True:
            chunk = self._h.next_output(cursor).wait()
            if chunk is None:
                return
            cursor += 1
            yield chunk

    def wait(self, on_pty: Optional[PtyOutputHandler] = None, on_stdout: Optional[OutputHandler] = None, on_stderr: Optional[OutputHandler] = None) -> CommandResult:
        """Wait for the end, handing all output (from the start) to the callbacks; raises
        ``CommandExitException`` on a non-zero exit code."""
        return _result(self._h.wait(on_stdout, on_stderr, on_pty).wait, self._retain)

    def kill(self) -> bool:
        return self._h.kill().wait()

    def send_stdin(self, data: Union[str, bytes], request_timeout: Optional[float] = None) -> None:
        self._h.send_stdin(_data(data), request_timeout).wait()

    def close_stdin(self, request_timeout: Optional[float] = None) -> None:
        self._h.close_stdin(request_timeout).wait()

    def disconnect(self) -> None:
        """Stop receiving output; the command keeps running."""
        self._h.disconnect()


class Commands:
    def __init__(self, native: _native.Commands) -> None:
        self._c = native

    @overload
    def run(self, cmd: str, background: Union[Literal[False], None] = None, envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, on_stdout: Optional[OutputHandler] = None, on_stderr: Optional[OutputHandler] = None, stdin: Optional[bool] = None, timeout: Optional[float] = 60, request_timeout: Optional[float] = None, *, retain_output: bool = True) -> CommandResult: ...

    @overload
    def run(self, cmd: str, background: Literal[True], envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, on_stdout: Optional[OutputHandler] = None, on_stderr: Optional[OutputHandler] = None, stdin: Optional[bool] = None, timeout: Optional[float] = 60, request_timeout: Optional[float] = None, *, retain_output: bool = True) -> CommandHandle: ...

    def run(self, cmd: str, background: Optional[bool] = None, envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, on_stdout: Optional[OutputHandler] = None, on_stderr: Optional[OutputHandler] = None, stdin: Optional[bool] = None, timeout: Optional[float] = 60, request_timeout: Optional[float] = None, *, retain_output: bool = True) -> Union[CommandResult, CommandHandle]:
        """Run ``cmd`` with ``/bin/bash -l -c``. Raises ``CommandExitException`` on a non-zero
        exit code; with ``background=True`` returns a ``CommandHandle`` at once. ``stdin=True``
        keeps stdin open for ``send_stdin``; ``retain_output=False`` leaves the output out of the
        result (callbacks still get it)."""
        op = self._c.run(cmd, bool(background), envs, user, cwd, on_stdout, on_stderr, stdin, timeout, request_timeout, retain_output)
        if background:
            return CommandHandle(op.wait(), retain_output)
        return _result(op.wait, retain_output)

    def connect(self, pid: int, timeout: Optional[float] = 60, request_timeout: Optional[float] = None, *, retain_output: bool = True) -> CommandHandle:
        """Attach to a running process; pass output callbacks to ``wait()``."""
        return CommandHandle(self._c.connect(pid, timeout, request_timeout, None, None, retain_output).wait(), retain_output)

    def list(self, request_timeout: Optional[float] = None) -> List[ProcessInfo]:
        return self._c.list(request_timeout).wait()

    def kill(self, pid: int, request_timeout: Optional[float] = None) -> bool:
        """SIGKILL ``pid``; False when there was no such process."""
        return self._c.kill(pid, request_timeout).wait()

    def send_stdin(self, pid: int, data: Union[str, bytes], request_timeout: Optional[float] = None) -> None:
        self._c.send_stdin(pid, _data(data), request_timeout).wait()

    def close_stdin(self, pid: int, request_timeout: Optional[float] = None) -> None:
        self._c.close_stdin(pid, request_timeout).wait()

    def stream_input(self, pid: int, data: Iterable[Union[str, bytes]], *, timeout: Optional[float] = 60.0) -> None:
        """Send ``data``'s chunks to ``pid``'s stdin, in order; returns once all were delivered."""
        _stream_all(self._c.stream_input(pid, timeout), data)


class AsyncCommandHandle:
    """A command running in the background (async); output callbacks are the ones given to
    ``run``/``connect``. ``stdout``/``stderr`` hold the output received so far."""

    def __init__(self, native: _native.CommandHandle, retain_output: bool = True) -> None:
        self._h = native
        self._retain = retain_output

    @property
    def pid(self) -> int:
        return self._h.pid

    @property
    def stdout(self) -> Optional[str]:
        return self._h.stdout if self._retain else None

    @property
    def stderr(self) -> Optional[str]:
        return self._h.stderr if self._retain else None

    @property
    def exit_code(self) -> Optional[int]:
        return self._h.exit_code

    @property
    def error(self) -> Optional[str]:
        return self._h.error

    async def wait(self) -> CommandResult:
        return await _aresult(self._h.wait().awaitable(), self._retain)

    async def kill(self) -> bool:
        return await self._h.kill().awaitable()

    async def send_stdin(self, data: Union[str, bytes], request_timeout: Optional[float] = None) -> None:
        await self._h.send_stdin(_data(data), request_timeout).awaitable()

    async def close_stdin(self, request_timeout: Optional[float] = None) -> None:
        await self._h.close_stdin(request_timeout).awaitable()

    async def disconnect(self) -> None:
        self._h.disconnect()


class AsyncCommands:
    def __init__(self, native: _native.Commands) -> None:
        self._c = native

    async def run(self, cmd: str, background: Optional[bool] = None, envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, on_stdout: Optional[OutputHandler] = None, on_stderr: Optional[OutputHandler] = None, stdin: Optional[bool] = None, timeout: Optional[float] = 60, request_timeout: Optional[float] = None, *, retain_output: bool = True) -> Union[CommandResult, AsyncCommandHandle]:
        op = self._c.run(cmd, bool(background), envs, user, cwd, on_loop(on_stdout), on_loop(on_stderr), stdin, timeout, request_timeout, retain_output)
        if background:
            return AsyncCommandHandle(await op.awaitable(), retain_output)
        return await _aresult(op.awaitable(), retain_output)

    async def connect(self, pid: int, timeout: Optional[float] = 60, request_timeout: Optional[float] = None, on_stdout: Optional[OutputHandler] = None, on_stderr: Optional[OutputHandler] = None, *, retain_output: bool = True) -> AsyncCommandHandle:
        return AsyncCommandHandle(await self._c.connect(pid, timeout, request_timeout, on_loop(on_stdout), on_loop(on_stderr), retain_output).awaitable(), retain_output)

    async def list(self, request_timeout: Optional[float] = None) -> List[ProcessInfo]:
        return await self._c.list(request_timeout).awaitable()

    async def kill(self, pid: int, request_timeout: Optional[float] = None) -> bool:
        return await self._c.kill(pid, request_timeout).awaitable()

    async def send_stdin(self, pid: int, data: Union[str, bytes], request_timeout: Optional[float] = None) -> None:
        await self._c.send_stdin(pid, _data(data), request_timeout).awaitable()

    async def close_stdin(self, pid: int, request_timeout: Optional[float] = None) -> None:
        await self._c.close_stdin(pid, request_timeout).awaitable()

    def stream_input(self, pid: int, *, timeout: Optional[float] = 60.0) -> AsyncCommandInputHandle:
        """An ordered input handle to ``pid``'s stdin (``send()``, then ``close()``)."""
        return AsyncCommandInputHandle(self._c.stream_input(pid, timeout))
