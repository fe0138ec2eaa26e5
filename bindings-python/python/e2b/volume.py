"""E2B's volumes: ``Volume`` / ``AsyncVolume`` (persistent file trees with their own content API),
``VolumeInfo``, ``VolumeAndToken``, ``VolumeEntryStat``, ``VolumeFileType``. Requests and errors
live in the core (``e2b::volume``); these classes only shape arguments and results.

``Sandbox.create(volume_mounts={"/mnt/data": volume})`` mounts a volume into a sandbox (see
docs/volumes.md)."""

import io
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import IO, Any, Dict, Iterator, List, Optional, TypedDict, Union

from . import _native
from ._utils import ClientFactory, class_method_variant, conn, pick, refuse


class VolumeFileType(str, Enum):
    """Type of a volume entry."""

    DIRECTORY = "directory"
    FILE = "file"
    SYMLINK = "symlink"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return str(self.value)


@dataclass
class VolumeInfo:
    """Information about a volume."""

    volume_id: str
    name: str


@dataclass
class VolumeAndToken(VolumeInfo):
    """A volume and the token of its content API."""

    token: str
    domain: Optional[str] = None


@dataclass
class VolumeEntryStat:
    """A file, directory or symlink of a volume."""

    name: str
    type: VolumeFileType
    path: str
    size: int
    mode: int
    uid: int
    gid: int
    atime: datetime
    mtime: datetime
    ctime: datetime
    target: Optional[str] = None


class VolumeApiParams(TypedDict, total=False):
    """Options of a volume content API call."""

    domain: Optional[str]
    debug: Optional[bool]
    request_timeout: Optional[float]
    headers: Optional[Dict[str, str]]
    token: Optional[str]
    api_url: Optional[str]
    proxy: Any
    http_version: Any
    logger: Any


_VOLUME_KEYS = ("domain", "debug", "request_timeout", "headers", "token", "api_url")
_VOLUME_UNSUPPORTED = ("proxy", "http_version", "logger")


def _vopts(opts: Dict[str, Any], fn: str) -> Optional["_native.VolumeApiOpts"]:
    picked = pick(opts, fn, _VOLUME_KEYS, _VOLUME_UNSUPPORTED)
    return _native.VolumeApiOpts(**picked) if picked else None


class VolumeConnectionConfig:
    """Where a volume's content API calls go (``api_url``) and what they send."""

    def __init__(self, domain: Optional[str] = None, debug: Optional[bool] = None, token: Optional[str] = None,
                 api_url: Optional[str] = None, request_timeout: Optional[float] = None,
                 headers: Optional[Dict[str, str]] = None, proxy: Any = None, logger: Any = None, *,
                 http_version: Any = None) -> None:
        refuse(proxy=proxy, logger=logger, http_version=http_version)
        handle = _native.VolumeHandle("", "", token, domain, debug)
        self.domain = domain
        self.debug = bool(debug)
        self.token = token
        self.access_token = token
        self.api_url = handle.content_url(_vopts({"api_url": api_url}, "VolumeConnectionConfig"))
        self.request_timeout = 60.0 if request_timeout is None else (None if request_timeout == 0 else request_timeout)
        self.headers = dict(headers or {})
        self.proxy = None
        self.logger = None


def _stat(t: Any) -> VolumeEntryStat:
    name, kind, path, size, mode, uid, gid, atime, mtime, ctime, target = t
    return VolumeEntryStat(name, VolumeFileType(kind), path, size, mode, uid, gid, atime, mtime, ctime, target)


def _bytes(data: Union[str, bytes, IO]) -> bytes:
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if hasattr(data, "read"):
        content = data.read()
        return content.encode("utf-8") if isinstance(content, str) else bytes(content)
    raise ValueError(f"Unsupported data type: {type(data)}")


def _shape(content: bytes, format: str) -> Any:
    if format == "bytes":
        return content
    if format == "stream":
        return iter([content[i:i + 65536] for i in range(0, len(content), 65536)] or [b""])
    return content.decode("utf-8")


def _check_format(format: str, stream_idle_timeout: Optional[float]) -> None:
    if format not in ("text", "bytes", "stream"):
        raise ValueError(f"format must be 'text', 'bytes' or 'stream', got {format!r}")
    refuse(stream_idle_timeout=stream_idle_timeout)


class _VolumeBase(ClientFactory):
    def __init__(self, volume_id: str, name: str, token: Optional[str] = None, domain: Optional[str] = None,
                 debug: Optional[bool] = None, proxy: Any = None, *, http_version: Any = None) -> None:
        refuse(proxy=proxy, http_version=http_version)
        self._v = _native.VolumeHandle(volume_id, name, token, domain, debug)

    @classmethod
    def _wrap(cls, handle: "_native.VolumeHandle") -> Any:
        vol = cls.__new__(cls)
        vol._v = handle
        return vol

    @classmethod
    def _conn(cls, opts: Dict[str, Any], fn: str) -> Optional["_native.ConnectionOpts"]:
        return conn(cls._resolve_api_params(**opts), fn)

    @property
    def volume_id(self) -> str:
        return self._v.volume_id

    @property
    def name(self) -> str:
        return self._v.name

    @property
    def token(self) -> Optional[str]:
        return self._v.token

    def __repr__(self) -> str:
        return f"{type(self).__name__}(volume_id={self.volume_id!r}, name={self.name!r})"


class Volume(_VolumeBase):
    """A persistent volume: files managed through its content API."""

    @classmethod
    def create(cls, name: str, **opts: Any) -> "Volume":
        """Create a volume."""
        return cls._wrap(_native.volume_create(name, cls._conn(opts, "create")).wait())

    @classmethod
    def connect(cls, volume_id: str, **opts: Any) -> "Volume":
        """A handle on an existing volume."""
        return cls._wrap(_native.volume_connect(volume_id, cls._conn(opts, "connect")).wait())

    @classmethod
    def _cls_get_info(cls, volume_id: str, **opts: Any) -> VolumeAndToken:
        return VolumeAndToken(*_native.volume_get_info(volume_id, cls._conn(opts, "get_info")).wait())

    @classmethod
    def _cls_list(cls, **opts: Any) -> List[VolumeInfo]:
        return [VolumeInfo(*t) for t in _native.volume_list(cls._conn(opts, "list")).wait()]

    @classmethod
    def destroy(cls, volume_id: str, **opts: Any) -> bool:
        """Delete a volume and its files: True if deleted, False if not found."""
        return _native.volume_destroy(volume_id, cls._conn(opts, "destroy")).wait()

    @class_method_variant("_cls_get_info")
    def get_info(self, path: str, **opts: Any) -> VolumeEntryStat:  # type: ignore[misc]
        """``Volume.get_info(volume_id)``: the volume and its token; ``vol.get_info(path)``: a
        path's stat."""
        return _stat(self._v.get_info(path, _vopts(opts, "get_info")).wait())

    @class_method_variant("_cls_list")
    def list(self, path: str, depth: Optional[int] = None, **opts: Any) -> List[VolumeEntryStat]:  # type: ignore[misc]
        """``Volume.list()``: every volume; ``vol.list(path, depth)``: a directory's entries."""
        return [_stat(t) for t in self._v.list(path, depth, _vopts(opts, "list")).wait()]

    def make_dir(self, path: str, uid: Optional[int] = None, gid: Optional[int] = None, mode: Optional[int] = None,
                 force: Optional[bool] = None, **opts: Any) -> VolumeEntryStat:
        """Make a directory; ``force`` also makes missing parents."""
        return _stat(self._v.make_dir(path, uid, gid, mode, force, _vopts(opts, "make_dir")).wait())

    def exists(self, path: str, **opts: Any) -> bool:
        return self._v.exists(path, _vopts(opts, "exists")).wait()

    def update_metadata(self, path: str, uid: Optional[int] = None, gid: Optional[int] = None,
                        mode: Optional[int] = None, **opts: Any) -> VolumeEntryStat:
        return _stat(self._v.update_metadata(path, uid, gid, mode, _vopts(opts, "update_metadata")).wait())

    def read_file(self, path: str, format: str = "text", stream_idle_timeout: Optional[float] = None,
                  **opts: Any) -> Union[str, bytes, Iterator[bytes]]:
        """A file's content as ``str`` (``format="text"``), ``bytes`` or an iterator of chunks."""
        _check_format(format, stream_idle_timeout)
        return _shape(self._v.read_file(path, _vopts(opts, "read_file")).wait(), format)

    def write_file(self, path: str, data: Union[str, bytes, IO], uid: Optional[int] = None, gid: Optional[int] = None,
                   mode: Optional[int] = None, force: Optional[bool] = None, **opts: Any) -> VolumeEntryStat:
        """Create or overwrite a file; ``force`` also makes missing parent directories."""
        content = _bytes(data)
        return _stat(self._v.write_file(path, content, uid, gid, mode, force, _vopts(opts, "write_file")).wait())

    def remove(self, path: str, **opts: Any) -> None:
        """Remove a file or a directory with its contents."""
        self._v.remove(path, _vopts(opts, "remove")).wait()


class AsyncVolume(_VolumeBase):
    """``Volume`` with awaitable calls."""

    @classmethod
    async def create(cls, name: str, **opts: Any) -> "AsyncVolume":
        return cls._wrap(await _native.volume_create(name, cls._conn(opts, "create")).awaitable())

    @classmethod
    async def connect(cls, volume_id: str, **opts: Any) -> "AsyncVolume":
        return cls._wrap(await _native.volume_connect(volume_id, cls._conn(opts, "connect")).awaitable())

    @classmethod
    async def _cls_get_info(cls, volume_id: str, **opts: Any) -> VolumeAndToken:
        return VolumeAndToken(*await _native.volume_get_info(volume_id, cls._conn(opts, "get_info")).awaitable())

    @classmethod
    async def _cls_list(cls, **opts: Any) -> List[VolumeInfo]:
        return [VolumeInfo(*t) for t in await _native.volume_list(cls._conn(opts, "list")).awaitable()]

    @classmethod
    async def destroy(cls, volume_id: str, **opts: Any) -> bool:
        return await _native.volume_destroy(volume_id, cls._conn(opts, "destroy")).awaitable()

    @class_method_variant("_cls_get_info")
    async def get_info(self, path: str, **opts: Any) -> VolumeEntryStat:  # type: ignore[misc]
        return _stat(await self._v.get_info(path, _vopts(opts, "get_info")).awaitable())

    @class_method_variant("_cls_list")
    async def list(self, path: str, depth: Optional[int] = None, **opts: Any) -> List[VolumeEntryStat]:  # type: ignore[misc]
        return [_stat(t) for t in await self._v.list(path, depth, _vopts(opts, "list")).awaitable()]

    async def make_dir(self, path: str, uid: Optional[int] = None, gid: Optional[int] = None, mode: Optional[int] = None,
                       force: Optional[bool] = None, **opts: Any) -> VolumeEntryStat:
        return _stat(await self._v.make_dir(path, uid, gid, mode, force, _vopts(opts, "make_dir")).awaitable())

    async def exists(self, path: str, **opts: Any) -> bool:
        return await self._v.exists(path, _vopts(opts, "exists")).awaitable()

    async def update_metadata(self, path: str, uid: Optional[int] = None, gid: Optional[int] = None,
                              mode: Optional[int] = None, **opts: Any) -> VolumeEntryStat:
        return _stat(await self._v.update_metadata(path, uid, gid, mode, _vopts(opts, "update_metadata")).awaitable())

    async def read_file(self, path: str, format: str = "text", stream_idle_timeout: Optional[float] = None,
                        **opts: Any) -> Any:
        _check_format(format, stream_idle_timeout)
        content = await self._v.read_file(path, _vopts(opts, "read_file")).awaitable()
        if format == "stream":
            return _aiter(content)
        return _shape(content, format)

    async def write_file(self, path: str, data: Union[str, bytes, IO], uid: Optional[int] = None,
                         gid: Optional[int] = None, mode: Optional[int] = None, force: Optional[bool] = None,
                         **opts: Any) -> VolumeEntryStat:
        content = _bytes(data)
        return _stat(await self._v.write_file(path, content, uid, gid, mode, force, _vopts(opts, "write_file")).awaitable())

    async def remove(self, path: str, **opts: Any) -> None:
        await self._v.remove(path, _vopts(opts, "remove")).awaitable()


async def _aiter(content: bytes):
    for chunk in _shape(content, "stream"):
        yield chunk
