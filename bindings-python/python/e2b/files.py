"""``sandbox.files`` (sync and async): thin wrappers over the native ``Files``."""

from typing import IO, List, Literal, Optional, Union, overload

from . import _native
from ._native import EntryInfo, WriteInfo

WriteData = Union[str, bytes, IO]


def _data(data: WriteData) -> bytes:
    if isinstance(data, str):
        return data.encode()
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    content = data.read()
    return content.encode() if isinstance(content, str) else bytes(content)


class Filesystem:
    def __init__(self, native: _native.Files) -> None:
        self._f = native

    @overload
    def read(self, path: str, format: Literal["text"] = "text", user: Optional[str] = None, request_timeout: Optional[float] = None) -> str: ...

    @overload
    def read(self, path: str, format: Literal["bytes"], user: Optional[str] = None, request_timeout: Optional[float] = None) -> bytearray: ...

    def read(self, path: str, format: str = "text", user: Optional[str] = None, request_timeout: Optional[float] = None) -> Union[str, bytearray]:
        r = self._f.read(path, format, user).wait()
        return bytearray(r) if format == "bytes" else r

    def write(self, path: str, data: WriteData, user: Optional[str] = None, request_timeout: Optional[float] = None) -> WriteInfo:
        return self._f.write(path, _data(data), user).wait()

    def list(self, path: str, depth: Optional[int] = 1, user: Optional[str] = None, request_timeout: Optional[float] = None) -> List[EntryInfo]:
        return self._f.list(path, depth if depth is not None else 1, user).wait()

    def exists(self, path: str, user: Optional[str] = None, request_timeout: Optional[float] = None) -> bool:
        return self._f.exists(path, user).wait()

    def get_info(self, path: str, user: Optional[str] = None, request_timeout: Optional[float] = None) -> EntryInfo:
        return self._f.get_info(path, user).wait()

    def remove(self, path: str, user: Optional[str] = None, request_timeout: Optional[float] = None) -> None:
        self._f.remove(path, user).wait()

    def rename(self, old_path: str, new_path: str, user: Optional[str] = None, request_timeout: Optional[float] = None) -> EntryInfo:
        return self._f.rename(old_path, new_path, user).wait()

    def make_dir(self, path: str, user: Optional[str] = None, request_timeout: Optional[float] = None) -> bool:
        """Create a directory (and parents); False when it already existed."""
        return self._f.make_dir(path, user).wait()


class AsyncFilesystem:
    def __init__(self, native: _native.Files) -> None:
        self._f = native

    async def read(self, path: str, format: str = "text", user: Optional[str] = None, request_timeout: Optional[float] = None) -> Union[str, bytearray]:
        r = await self._f.read(path, format, user).awaitable()
        return bytearray(r) if format == "bytes" else r

    async def write(self, path: str, data: WriteData, user: Optional[str] = None, request_timeout: Optional[float] = None) -> WriteInfo:
        return await self._f.write(path, _data(data), user).awaitable()

    async def list(self, path: str, depth: Optional[int] = 1, user: Optional[str] = None, request_timeout: Optional[float] = None) -> List[EntryInfo]:
        return await self._f.list(path, depth if depth is not None else 1, user).awaitable()

    async def exists(self, path: str, user: Optional[str] = None, request_timeout: Optional[float] = None) -> bool:
        return await self._f.exists(path, user).awaitable()

    async def get_info(self, path: str, user: Optional[str] = None, request_timeout: Optional[float] = None) -> EntryInfo:
        return await self._f.get_info(path, user).awaitable()

    async def remove(self, path: str, user: Optional[str] = None, request_timeout: Optional[float] = None) -> None:
        await self._f.remove(path, user).awaitable()

    async def rename(self, old_path: str, new_path: str, user: Optional[str] = None, request_timeout: Optional[float] = None) -> EntryInfo:
        return await self._f.rename(old_path, new_path, user).awaitable()

    async def make_dir(self, path: str, user: Optional[str] = None, request_timeout: Optional[float] = None) -> bool:
        return await self._f.make_dir(path, user).awaitable()
