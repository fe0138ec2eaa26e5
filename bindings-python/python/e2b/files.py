"""``sandbox.files`` (sync and async): thin wrappers over the native ``Files``.

Signatures are E2B's (tests/parity checks them). Options this SDK does not implement yet
(``gzip``, ``use_octet_stream``, ``metadata``, ``stream_idle_timeout``) are refused when set,
never ignored. ``format="stream"`` yields the content in one chunk (it is read whole first)."""

from typing import IO, Any, Callable, Dict, Iterator, List, Literal, Optional, TypedDict, Union, overload

from . import _native
from ._native import EntryInfo, WriteInfo
from ._utils import on_loop, refuse
from .models import FilesystemEvent, _event
from .watch import AsyncWatchHandle, WatchHandle

WriteData = Union[str, bytes, IO]


class WriteEntry(TypedDict):
    """One file of ``write_files``."""

    path: str
    data: WriteData


def _data(data: WriteData) -> bytes:
    if isinstance(data, str):
        return data.encode()
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    content = data.read()
    return content.encode() if isinstance(content, str) else bytes(content)


def _refuse_transfer(gzip: bool, use_octet_stream: Optional[bool] = None, metadata: Optional[Dict[str, str]] = None) -> None:
    refuse(gzip=gzip or None, use_octet_stream=use_octet_stream or None, metadata=metadata)


def _entries(files: List[WriteEntry]) -> List[Any]:
    return [(f["path"], _data(f["data"])) for f in files]


def _shape(content: Any, format: str) -> Any:
    if format == "bytes":
        return bytearray(content)
    if format == "stream":
        return iter([bytes(content)])
    return content


def _native_format(format: str) -> str:
    return "bytes" if format == "stream" else format


class Filesystem:
    def __init__(self, native: _native.Files) -> None:
        self._f = native

    @overload
    def read(self, path: str, format: Literal["text"] = "text", user: Optional[str] = None, request_timeout: Optional[float] = None, gzip: bool = False, stream_idle_timeout: Optional[float] = None) -> str: ...

    @overload
    def read(self, path: str, format: Literal["bytes"], user: Optional[str] = None, request_timeout: Optional[float] = None, gzip: bool = False, stream_idle_timeout: Optional[float] = None) -> bytearray: ...

    @overload
    def read(self, path: str, format: Literal["stream"], user: Optional[str] = None, request_timeout: Optional[float] = None, gzip: bool = False, stream_idle_timeout: Optional[float] = None) -> Iterator[bytes]: ...

    def read(self, path: str, format: str = "text", user: Optional[str] = None, request_timeout: Optional[float] = None, gzip: bool = False, stream_idle_timeout: Optional[float] = None) -> Union[str, bytearray, Iterator[bytes]]:
        refuse(gzip=gzip or None, stream_idle_timeout=stream_idle_timeout)
        return _shape(self._f.read(path, _native_format(format), user, request_timeout).wait(), format)

    def write(self, path: str, data: WriteData, user: Optional[str] = None, request_timeout: Optional[float] = None, gzip: bool = False, use_octet_stream: Optional[bool] = None, metadata: Optional[Dict[str, str]] = None) -> WriteInfo:
        """Write (create or overwrite) a file from ``str``, ``bytes`` or a file object."""
        _refuse_transfer(gzip, use_octet_stream, metadata)
        return self._f.write(path, _data(data), user, request_timeout).wait()

    def write_files(self, files: List[WriteEntry], user: Optional[str] = None, request_timeout: Optional[float] = None, gzip: bool = False, use_octet_stream: Optional[bool] = None, metadata: Optional[Dict[str, str]] = None) -> List[WriteInfo]:
        """Write several files (``[{"path": ..., "data": ...}]``), in order."""
        _refuse_transfer(gzip, use_octet_stream, metadata)
        return self._f.write_files(_entries(files), user, request_timeout).wait()

    def list(self, path: str, depth: Optional[int] = 1, user: Optional[str] = None, request_timeout: Optional[float] = None) -> List[EntryInfo]:
        return self._f.list(path, depth if depth is not None else 1, user, request_timeout).wait()

    def exists(self, path: str, user: Optional[str] = None, request_timeout: Optional[float] = None) -> bool:
        return self._f.exists(path, user, request_timeout).wait()

    def get_info(self, path: str, user: Optional[str] = None, request_timeout: Optional[float] = None) -> EntryInfo:
        return self._f.get_info(path, user, request_timeout).wait()

    def remove(self, path: str, user: Optional[str] = None, request_timeout: Optional[float] = None) -> None:
        self._f.remove(path, user, request_timeout).wait()

    def rename(self, old_path: str, new_path: str, user: Optional[str] = None, request_timeout: Optional[float] = None) -> EntryInfo:
        return self._f.rename(old_path, new_path, user, request_timeout).wait()

    def make_dir(self, path: str, user: Optional[str] = None, request_timeout: Optional[float] = None) -> bool:
        """Create a directory (and parents); False when it already existed."""
        return self._f.make_dir(path, user, request_timeout).wait()

    def watch_dir(self, path: str, user: Optional[str] = None, request_timeout: Optional[float] = None, recursive: bool = False, include_entry: bool = False, allow_network_mounts: bool = False) -> WatchHandle:
        """Watch a directory; collect the changes with ``get_new_events()``."""
        return WatchHandle(self._f.create_watcher(path, user, request_timeout, recursive, include_entry, allow_network_mounts).wait())


class AsyncFilesystem:
    def __init__(self, native: _native.Files) -> None:
        self._f = native

    async def read(self, path: str, format: str = "text", user: Optional[str] = None, request_timeout: Optional[float] = None, gzip: bool = False, stream_idle_timeout: Optional[float] = None) -> Any:
        refuse(gzip=gzip or None, stream_idle_timeout=stream_idle_timeout)
        content = await self._f.read(path, _native_format(format), user, request_timeout).awaitable()
        if format == "stream":
            return _aiter_once(bytes(content))
        return _shape(content, format)

    async def write(self, path: str, data: WriteData, user: Optional[str] = None, request_timeout: Optional[float] = None, gzip: bool = False, use_octet_stream: Optional[bool] = None, metadata: Optional[Dict[str, str]] = None) -> WriteInfo:
        _refuse_transfer(gzip, use_octet_stream, metadata)
        return await self._f.write(path, _data(data), user, request_timeout).awaitable()

    async def write_files(self, files: List[WriteEntry], user: Optional[str] = None, request_timeout: Optional[float] = None, gzip: bool = False, use_octet_stream: Optional[bool] = None, metadata: Optional[Dict[str, str]] = None) -> List[WriteInfo]:
        _refuse_transfer(gzip, use_octet_stream, metadata)
        return await self._f.write_files(_entries(files), user, request_timeout).awaitable()

    async def list(self, path: str, depth: Optional[int] = 1, user: Optional[str] = None, request_timeout: Optional[float] = None) -> List[EntryInfo]:
        return await self._f.list(path, depth if depth is not None else 1, user, request_timeout).awaitable()

    async def exists(self, path: str, user: Optional[str] = None, request_timeout: Optional[float] = None) -> bool:
        return await self._f.exists(path, user, request_timeout).awaitable()

    async def get_info(self, path: str, user: Optional[str] = None, request_timeout: Optional[float] = None) -> EntryInfo:
        return await self._f.get_info(path, user, request_timeout).awaitable()

    async def remove(self, path: str, user: Optional[str] = None, request_timeout: Optional[float] = None) -> None:
        await self._f.remove(path, user, request_timeout).awaitable()

    async def rename(self, old_path: str, new_path: str, user: Optional[str] = None, request_timeout: Optional[float] = None) -> EntryInfo:
        return await self._f.rename(old_path, new_path, user, request_timeout).awaitable()

    async def make_dir(self, path: str, user: Optional[str] = None, request_timeout: Optional[float] = None) -> bool:
        return await self._f.make_dir(path, user, request_timeout).awaitable()

    async def watch_dir(self, path: str, on_event: Callable[[FilesystemEvent], Any], on_exit: Optional[Callable[[Optional[Exception]], Any]] = None, user: Optional[str] = None, request_timeout: Optional[float] = None, timeout: Optional[float] = 60, recursive: bool = False, include_entry: bool = False, allow_network_mounts: bool = False) -> AsyncWatchHandle:
        """Watch a directory, calling ``on_event`` for each change (``on_exit`` when the watch
        ends by itself, with the error if any); returns once the watch is in place."""
        handler = on_loop(on_event)
        assert handler is not None
        native = await self._f.watch_dir(path, lambda e: handler(_event(e)), on_loop(on_exit), user, request_timeout, timeout, recursive, include_entry, allow_network_mounts).awaitable()
        return AsyncWatchHandle(native)


async def _aiter_once(content: bytes) -> Any:
    yield content
