"""The synchronous ``Sandbox``: every call blocks with the GIL released; Ctrl-C interrupts."""

from typing import Any, Dict, List, Optional, Union

from . import _native
from ._native import SandboxInfo, SnapshotInfo
from ._utils import class_method_variant, conn
from .commands import Commands
from .files import Filesystem
from .models import SandboxQuery
from .paginator import SandboxPaginator, SnapshotPaginator


def _query_args(query: Optional[SandboxQuery]) -> Dict[str, Any]:
    if query is None:
        return {}
    return {
        "metadata": query.metadata,
        "state": [getattr(s, "value", s) for s in query.state] if query.state else None,
        # A naive datetime is local time, as in E2B's SDK.
        "started_after": query.started_after.astimezone() if query.started_after else None,
        "template": query.template,
    }


class Sandbox:
    """An E2B sandbox. Create one with ``Sandbox.create()``; ``with Sandbox.create() as s:``
    kills it on exit."""

    def __init__(self, _native_sandbox: _native.Sandbox, _opts: Optional[Dict[str, Any]] = None) -> None:
        self._s = _native_sandbox
        self._opts: Dict[str, Any] = dict(_opts or {})
        self._commands = Commands(_native_sandbox.commands)
        self._files = Filesystem(_native_sandbox.files)

    # -- properties ---------------------------------------------------------------------------
    @property
    def sandbox_id(self) -> str:
        return self._s.sandbox_id

    @property
    def sandbox_domain(self) -> Optional[str]:
        return self._s.sandbox_domain

    @property
    def envd_version(self) -> str:
        return self._s.envd_version

    @property
    def traffic_access_token(self) -> Optional[str]:
        return self._s.traffic_access_token

    @property
    def commands(self) -> Commands:
        return self._commands

    @property
    def files(self) -> Filesystem:
        return self._files

    def get_host(self, port: int) -> str:
        return self._s.get_host(port)

    def __repr__(self) -> str:
        return f"Sandbox(sandbox_id={self.sandbox_id!r})"

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.kill()

    # -- lifecycle ----------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        template: Optional[str] = None,
        timeout: Optional[int] = None,
        metadata: Optional[Dict[str, str]] = None,
        envs: Optional[Dict[str, str]] = None,
        secure: bool = True,
        allow_internet_access: Optional[bool] = None,
        **opts: Any,
    ) -> "Sandbox":
        """Create a sandbox from a template (default ``base``) or a snapshot ID."""
        native = _native.Sandbox.create(template, timeout, metadata, envs, secure, allow_internet_access, conn(opts)).wait()
        return cls(native, opts)

    @class_method_variant("_cls_connect")
    def connect(self, timeout: Optional[int] = None, **opts: Any) -> "Sandbox":  # type: ignore[misc]
        """Connect to this sandbox again (resumes it if paused)."""
        return type(self)._cls_connect(self.sandbox_id, timeout, **{**self._opts, **opts})

    @classmethod
    def _cls_connect(cls, sandbox_id: str, timeout: Optional[int] = None, **opts: Any) -> "Sandbox":
        return cls(_native.Sandbox.connect(sandbox_id, timeout, conn(opts)).wait(), opts)

    def is_running(self, request_timeout: Optional[float] = None) -> bool:
        return self._s.is_running(request_timeout).wait()

    @class_method_variant("_cls_kill")
    def kill(self, **opts: Any) -> bool:  # type: ignore[misc]
        """Kill the sandbox; False when it was already gone."""
        if opts:
            return type(self)._cls_kill(self.sandbox_id, **{**self._opts, **opts})
        return self._s.kill().wait()

    @classmethod
    def _cls_kill(cls, sandbox_id: str, **opts: Any) -> bool:
        return _native.Sandbox.kill_by_id(sandbox_id, conn(opts)).wait()

    @class_method_variant("_cls_set_timeout")
    def set_timeout(self, timeout: int, **opts: Any) -> None:  # type: ignore[misc]
        if opts:
            return type(self)._cls_set_timeout(self.sandbox_id, timeout, **{**self._opts, **opts})
        self._s.set_timeout(timeout).wait()

    @classmethod
    def _cls_set_timeout(cls, sandbox_id: str, timeout: int, **opts: Any) -> None:
        _native.Sandbox.set_timeout_by_id(sandbox_id, timeout, conn(opts)).wait()

    @class_method_variant("_cls_get_info")
    def get_info(self, **opts: Any) -> SandboxInfo:  # type: ignore[misc]
        if opts:
            return type(self)._cls_get_info(self.sandbox_id, **{**self._opts, **opts})
        return self._s.get_info().wait()

    @classmethod
    def _cls_get_info(cls, sandbox_id: str, **opts: Any) -> SandboxInfo:
        return _native.Sandbox.get_info_by_id(sandbox_id, conn(opts)).wait()

    @class_method_variant("_cls_pause")
    def pause(self, keep_memory: bool = True, **opts: Any) -> bool:  # type: ignore[misc]
        """Pause the sandbox; False when it was already paused."""
        if opts:
            return type(self)._cls_pause(self.sandbox_id, keep_memory, **{**self._opts, **opts})
        return self._s.pause(keep_memory).wait()

    @classmethod
    def _cls_pause(cls, sandbox_id: str, keep_memory: bool = True, **opts: Any) -> bool:
        return _native.Sandbox.pause_by_id(sandbox_id, keep_memory, conn(opts)).wait()

    @class_method_variant("_cls_fork")
    def fork(self, timeout: Optional[int] = None, count: Optional[int] = None, **opts: Any) -> List[Union["Sandbox", Exception]]:  # type: ignore[misc]
        return type(self)._cls_fork(self.sandbox_id, timeout, count, **{**self._opts, **opts})

    @classmethod
    def _cls_fork(cls, sandbox_id: str, timeout: Optional[int] = None, count: Optional[int] = None, **opts: Any) -> List[Union["Sandbox", Exception]]:
        items = _native.Sandbox.fork_by_id(sandbox_id, timeout, count, conn(opts)).wait()
        return [cls(i, opts) if isinstance(i, _native.Sandbox) else i for i in items]

    @staticmethod
    def list(
        query: Optional[SandboxQuery] = None,
        limit: Optional[int] = None,
        next_token: Optional[str] = None,
        order: Optional[str] = None,
        **opts: Any,
    ) -> SandboxPaginator:
        """A paginator over sandboxes: ``while p.has_next: p.next_items()``."""
        return SandboxPaginator(
            _native.Sandbox.list(limit=limit, next_token=next_token, order=order, opts=conn(opts), **_query_args(query))
        )

    # -- snapshots ----------------------------------------------------------------------------
    @class_method_variant("_cls_create_snapshot")
    def create_snapshot(self, name: Optional[str] = None, **opts: Any) -> SnapshotInfo:  # type: ignore[misc]
        """Snapshot the running sandbox (it keeps running); the ID works as a template."""
        if opts:
            return type(self)._cls_create_snapshot(self.sandbox_id, name, **{**self._opts, **opts})
        return self._s.create_snapshot(name).wait()

    @classmethod
    def _cls_create_snapshot(cls, sandbox_id: str, name: Optional[str] = None, **opts: Any) -> SnapshotInfo:
        return _native.Sandbox.create_snapshot_by_id(sandbox_id, name, conn(opts)).wait()

    @class_method_variant("_cls_list_snapshots")
    def list_snapshots(self, limit: Optional[int] = None, next_token: Optional[str] = None, name: Optional[str] = None, **opts: Any) -> SnapshotPaginator:  # type: ignore[misc]
        """Snapshots taken from this sandbox."""
        if opts:
            return type(self)._cls_list_snapshots(self.sandbox_id, limit, next_token, name, **{**self._opts, **opts})
        return SnapshotPaginator(self._s.list_own_snapshots(limit, next_token, name))

    @classmethod
    def _cls_list_snapshots(cls, sandbox_id: Optional[str] = None, limit: Optional[int] = None, next_token: Optional[str] = None, name: Optional[str] = None, **opts: Any) -> SnapshotPaginator:
        return SnapshotPaginator(_native.Sandbox.list_snapshots(sandbox_id, limit, next_token, name, conn(opts)))

    @staticmethod
    def delete_snapshot(snapshot_id: str, **opts: Any) -> bool:
        """Delete a snapshot; True when deleted, False when it was not found."""
        return _native.Sandbox.delete_snapshot(snapshot_id, conn(opts)).wait()
