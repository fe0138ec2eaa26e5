"""``sandbox.pty`` (sync and async): interactive terminals, thin over the native ``Pty``.
A terminal is a ``CommandHandle``: read its output with ``wait(on_pty=...)`` or iteration
(sync), or the ``on_data`` callback (async)."""

from typing import Callable, Dict, Iterable, Optional, Union

from . import _native
from .commands import AsyncCommandHandle, AsyncCommandInputHandle, CommandHandle, _data, _stream_all
from ._utils import on_loop
from .models import PtySize


class Pty:
    def __init__(self, native: _native.Pty) -> None:
        self._p = native

    def create(self, size: PtySize, user: Optional[str] = None, cwd: Optional[str] = None, envs: Optional[Dict[str, str]] = None, timeout: Optional[float] = 60, request_timeout: Optional[float] = None) -> CommandHandle:
        """Start ``/bin/bash -i -l`` in a terminal of ``size``. ``request_timeout`` does not apply
        to this streaming call (``timeout`` bounds it), as in E2B's SDK."""
        return CommandHandle(self._p.create(size.cols, size.rows, None, user, cwd, envs, timeout).wait())

    def connect(self, pid: int, timeout: Optional[float] = 60, request_timeout: Optional[float] = None) -> CommandHandle:
        return CommandHandle(self._p.connect(pid, None, timeout).wait())

    def send_stdin(self, pid: int, data: Union[str, bytes], request_timeout: Optional[float] = None) -> None:
        self._p.send_stdin(pid, _data(data), request_timeout).wait()

    def resize(self, pid: int, size: PtySize, request_timeout: Optional[float] = None) -> None:
        self._p.resize(pid, size.cols, size.rows, request_timeout).wait()

    def kill(self, pid: int, request_timeout: Optional[float] = None) -> bool:
        return self._p.kill(pid, request_timeout).wait()

    def stream_input(self, pid: int, data: Iterable[Union[str, bytes]], *, timeout: Optional[float] = 60.0) -> None:
        """Type ``data``'s chunks into the terminal, in order."""
        _stream_all(self._p.stream_input(pid, timeout), data)


class AsyncPty:
    def __init__(self, native: _native.Pty) -> None:
        self._p = native

    async def create(self, size: PtySize, on_data: Callable[[bytes], None], user: Optional[str] = None, cwd: Optional[str] = None, envs: Optional[Dict[str, str]] = None, timeout: Optional[float] = 60, request_timeout: Optional[float] = None) -> AsyncCommandHandle:
        return AsyncCommandHandle(await self._p.create(size.cols, size.rows, on_loop(on_data), user, cwd, envs, timeout).awaitable())

    async def connect(self, pid: int, on_data: Callable[[bytes], None], timeout: Optional[float] = 60, request_timeout: Optional[float] = None) -> AsyncCommandHandle:
        return AsyncCommandHandle(await self._p.connect(pid, on_loop(on_data), timeout).awaitable())

    async def send_stdin(self, pid: int, data: Union[str, bytes], request_timeout: Optional[float] = None) -> None:
        await self._p.send_stdin(pid, _data(data), request_timeout).awaitable()

    async def resize(self, pid: int, size: PtySize, request_timeout: Optional[float] = None) -> None:
        await self._p.resize(pid, size.cols, size.rows, request_timeout).awaitable()

    async def kill(self, pid: int, request_timeout: Optional[float] = None) -> bool:
        return await self._p.kill(pid, request_timeout).awaitable()

    def stream_input(self, pid: int, *, timeout: Optional[float] = 60.0) -> AsyncCommandInputHandle:
        return AsyncCommandInputHandle(self._p.stream_input(pid, timeout))
