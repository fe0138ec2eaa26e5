"""The synchronous ``Sandbox``: every call blocks with the GIL released; Ctrl-C interrupts."""

from datetime import datetime
from typing import Any, Dict, List, Optional, Union

from . import _native
from ._native import SandboxInfo, SnapshotInfo
from ._utils import ClientFactory, as_json, class_method_variant, conn, mounts as _mounts, refuse, resolve_network
from .connection_config import ConnectionConfig
from .commands import Commands
from .git import Git
from .pty import Pty
from .files import Filesystem
from .models import SandboxMetrics, SandboxQuery
from .paginator import SandboxPaginator, SnapshotPaginator


def _unix(t: Optional[datetime]) -> Optional[int]:
    return int(t.timestamp()) if t else None


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


class Sandbox(ClientFactory):
    """An E2B sandbox. Create one with ``Sandbox.create()``; ``with Sandbox.create() as s:``
    kills it on exit."""

    def __init__(self, _native_sandbox: _native.Sandbox, _opts: Optional[Dict[str, Any]] = None) -> None:
        self._s = _native_sandbox
        self._opts: Dict[str, Any] = dict(_opts or {})
        self._commands = Commands(_native_sandbox.commands)
        self._pty = Pty(_native_sandbox.pty)
        self._git = Git(_native_sandbox.git)
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
    def _envd_access_token(self) -> Optional[str]:
        # E2B's SDK keeps it under this name; e2b-code-interpreter sends it to its server.
        return self._s.envd_access_token

    @property
    def commands(self) -> Commands:
        return self._commands

    @property
    def files(self) -> Filesystem:
        return self._files

    @property
    def git(self) -> Git:
        """Git helpers (deprecated upstream: run git with ``commands.run()``)."""
        return self._git

    @property
    def pty(self) -> Pty:
        return self._pty

    @property
    def envd_api_url(self) -> str:
        """Base URL of this sandbox's envd (through sandboxd's proxy when local)."""
        return self._s.envd_api_url

    @property
    def envd_direct_url(self) -> str:
        """Direct URL of this sandbox's envd (the same as ``envd_api_url`` here)."""
        return self._s.envd_api_url

    @property
    def connection_config(self) -> ConnectionConfig:
        return ConnectionConfig._of(self._s.connection_config)

    def get_mcp_url(self) -> str:
        """The MCP gateway's URL: ``https://<host of port 50005>/mcp``."""
        return self._s.get_mcp_url()

    def get_mcp_token(self) -> Optional[str]:
        """The MCP gateway's access token (read from the sandbox when this handle did not start it)."""
        return self._s.get_mcp_token().wait()

    def get_host(self, port: int) -> str:
        return self._s.get_host(port)

    def upload_url(self, path: str, user: Optional[str] = None, use_signature_expiration: Optional[int] = None) -> str:
        """URL to POST a file to (multipart/form-data), signed when the sandbox is secure."""
        return self._s.upload_url(path, user, use_signature_expiration)

    def download_url(self, path: str, user: Optional[str] = None, use_signature_expiration: Optional[int] = None) -> str:
        """URL to GET a file from, signed when the sandbox is secure."""
        return self._s.download_url(path, user, use_signature_expiration)

    def __repr__(self) -> str:
        return f"Sandbox(sandbox_id={self.sandbox_id!r})"

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.kill()

    # -- lifecycle ----------------------------------------------------------------------------
    #: Template of ``create()`` when none is given; subclasses may override it.
    default_template: str = "base"
    #: Sandbox lifetime in seconds when ``create()`` gets no ``timeout`` (the server's default).
    default_sandbox_timeout: int = 300
    #: Template of ``create(mcp=...)`` when none is given.
    default_mcp_template: str = "mcp-gateway"
    #: Port of the MCP gateway in the sandbox.
    mcp_port: int = 50005

    @classmethod
    def create(
        cls,
        template: Optional[str] = None,
        timeout: Optional[int] = None,
        metadata: Optional[Dict[str, str]] = None,
        envs: Optional[Dict[str, str]] = None,
        secure: Optional[bool] = None,
        allow_internet_access: Optional[bool] = None,
        mcp: Optional[Dict[str, Any]] = None,
        network: Optional[Dict[str, Any]] = None,
        iam: Optional[Dict[str, Any]] = None,
        lifecycle: Optional[Dict[str, Any]] = None,
        volume_mounts: Optional[Dict[str, Any]] = None,
        logger: Optional[Any] = None,
        idempotency_key: Optional[str] = None,
        **opts: Any,
    ) -> "Sandbox":
        """Create a sandbox from a template (default ``cls.default_template``) or a snapshot ID.
        ``lifecycle`` and ``network`` go to the server as E2B sends them; with ``mcp`` the sandbox
        comes from ``cls.default_mcp_template`` unless ``template`` is given, and the MCP gateway is
        started in it (the sandbox is killed if it does not start). ``volume_mounts`` (mount path →
        ``Volume`` or volume name) is sent as E2B sends it; the server mounts each volume there.
        ``iam`` tokens are minted by the server into requests whose transform rules name them;
        callable transforms and selectors run here, as in E2B's SDK. ``logger`` is refused (not
        implemented here yet)."""
        refuse(logger=logger)
        network = resolve_network(network, iam)
        if not template:
            template = cls.default_mcp_template if mcp is not None else cls.default_template
        native = _native.Sandbox.create(
            template, timeout, metadata, envs, secure is not False, allow_internet_access, conn(cls._resolve_api_params(**opts), "create"),
            lifecycle=as_json("lifecycle", lifecycle), network=as_json("network", network), idempotency_key=idempotency_key,
            mcp=as_json("mcp", mcp), volume_mounts=_mounts(volume_mounts), iam=as_json("iam", iam),
        ).wait()
        return cls(native, opts)

    @class_method_variant("_cls_connect")
    def connect(self, timeout: Optional[int] = None, *, on_resume: str = "restore", **opts: Any) -> "Sandbox":  # type: ignore[misc]
        """Connect to this sandbox again (resumes it if paused; ``on_resume="reboot"`` cold-boots
        a paused one from its disk)."""
        return type(self)._cls_connect(self.sandbox_id, timeout, on_resume=on_resume, **{**self._opts, **opts})

    @classmethod
    def _cls_connect(cls, sandbox_id: str, timeout: Optional[int] = None, logger: Optional[Any] = None, *, on_resume: str = "restore", **opts: Any) -> "Sandbox":
        refuse(logger=logger)
        return cls(_native.Sandbox.connect(sandbox_id, timeout, conn(cls._resolve_api_params(**opts), "connect"), on_resume).wait(), opts)

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
        return _native.Sandbox.kill_by_id(sandbox_id, conn(cls._resolve_api_params(**opts), "kill")).wait()

    @class_method_variant("_cls_set_timeout")
    def set_timeout(self, timeout: int, **opts: Any) -> None:  # type: ignore[misc]
        if opts:
            return type(self)._cls_set_timeout(self.sandbox_id, timeout, **{**self._opts, **opts})
        self._s.set_timeout(timeout).wait()

    @classmethod
    def _cls_set_timeout(cls, sandbox_id: str, timeout: int, **opts: Any) -> None:
        _native.Sandbox.set_timeout_by_id(sandbox_id, timeout, conn(cls._resolve_api_params(**opts), "set_timeout")).wait()

    @class_method_variant("_cls_get_info")
    def get_info(self, **opts: Any) -> SandboxInfo:  # type: ignore[misc]
        if opts:
            return type(self)._cls_get_info(self.sandbox_id, **{**self._opts, **opts})
        return self._s.get_info().wait()

    @classmethod
    def _cls_get_info(cls, sandbox_id: str, **opts: Any) -> SandboxInfo:
        return _native.Sandbox.get_info_by_id(sandbox_id, conn(cls._resolve_api_params(**opts), "get_info")).wait()

    @class_method_variant("_cls_pause")
    def pause(self, keep_memory: Optional[bool] = None, *, mode: Optional[str] = None, strict: bool = False, **opts: Any) -> bool:  # type: ignore[misc]
        """Pause the sandbox; False when it was already paused. ``mode="filesystem"`` keeps only
        the disk (resume cold-boots); ``strict`` refuses when envd does not answer."""
        if opts:
            return type(self)._cls_pause(self.sandbox_id, keep_memory, mode=mode, strict=strict, **{**self._opts, **opts})
        return self._s.pause(keep_memory, mode, strict).wait()

    @classmethod
    def _cls_pause(cls, sandbox_id: str, keep_memory: Optional[bool] = None, *, mode: Optional[str] = None, strict: bool = False, **opts: Any) -> bool:
        return _native.Sandbox.pause_by_id(sandbox_id, keep_memory, mode, strict, conn(cls._resolve_api_params(**opts), "pause")).wait()

    @class_method_variant("_cls_pause")
    def beta_pause(self, keep_memory: Optional[bool] = None, *, mode: Optional[str] = None, **opts: Any) -> bool:  # type: ignore[misc]
        """Deprecated alias of ``pause()``."""
        return self.pause(keep_memory, mode=mode, **opts)

    @class_method_variant("_cls_fork")
    def fork(self, timeout: Optional[int] = None, count: Optional[int] = None, **opts: Any) -> List[Union["Sandbox", Exception]]:  # type: ignore[misc]
        return type(self)._cls_fork(self.sandbox_id, timeout, count, **{**self._opts, **opts})

    @classmethod
    def _cls_fork(cls, sandbox_id: str, timeout: Optional[int] = None, count: Optional[int] = None, logger: Optional[Any] = None, **opts: Any) -> List[Union["Sandbox", Exception]]:
        refuse(logger=logger)
        items = _native.Sandbox.fork_by_id(sandbox_id, timeout, count, conn(cls._resolve_api_params(**opts), "fork")).wait()
        return [cls(i, opts) if isinstance(i, _native.Sandbox) else i for i in items]

    @class_method_variant("_cls_get_metrics")
    def get_metrics(self, start: Optional[datetime] = None, end: Optional[datetime] = None, **opts: Any) -> List[SandboxMetrics]:  # type: ignore[misc]
        """Metrics samples of the sandbox between ``start`` and ``end``."""
        if opts:
            return type(self)._cls_get_metrics(self.sandbox_id, start, end, **{**self._opts, **opts})
        return [SandboxMetrics(**m) for m in self._s.get_metrics(_unix(start), _unix(end)).wait()]

    @classmethod
    def _cls_get_metrics(cls, sandbox_id: str, start: Optional[datetime] = None, end: Optional[datetime] = None, **opts: Any) -> List[SandboxMetrics]:
        native = _native.Sandbox.get_metrics_by_id(sandbox_id, _unix(start), _unix(end), conn(cls._resolve_api_params(**opts), "get_metrics"))
        return [SandboxMetrics(**m) for m in native.wait()]

    @class_method_variant("_cls_update_network")
    def update_network(self, network: Dict[str, Any], **opts: Any) -> None:  # type: ignore[misc]
        """Change the egress rules of the running sandbox (``allow_out``, ``deny_out``,
        ``allow_internet_access``, ``rules``); omitted ones are cleared."""
        if opts:
            return type(self)._cls_update_network(self.sandbox_id, network, **{**self._opts, **opts})
        self._s.update_network(as_json("network", network) or "null").wait()

    @classmethod
    def _cls_update_network(cls, sandbox_id: str, network: Dict[str, Any], **opts: Any) -> None:
        _native.Sandbox.update_network_by_id(sandbox_id, as_json("network", network) or "null", conn(cls._resolve_api_params(**opts), "update_network")).wait()

    @classmethod
    def list(
        cls,
        query: Optional[SandboxQuery] = None,
        limit: Optional[int] = None,
        next_token: Optional[str] = None,
        order: Optional[str] = None,
        **opts: Any,
    ) -> SandboxPaginator:
        """A paginator over sandboxes: ``while p.has_next: p.next_items()``."""
        return SandboxPaginator(
            _native.Sandbox.list(limit=limit, next_token=next_token, order=order, opts=conn(cls._resolve_api_params(**opts), "list"), **_query_args(query))
        )

    # -- snapshots ----------------------------------------------------------------------------
    @class_method_variant("_cls_create_snapshot")
    def create_snapshot(self, name: Optional[str] = None, *, mode: Optional[str] = None, **opts: Any) -> SnapshotInfo:  # type: ignore[misc]
        """Snapshot the running sandbox (it keeps running); the ID works as a template.
        ``mode="filesystem"`` snapshots the disk only."""
        if opts:
            return type(self)._cls_create_snapshot(self.sandbox_id, name, mode=mode, **{**self._opts, **opts})
        return self._s.create_snapshot(name, mode).wait()

    @classmethod
    def _cls_create_snapshot(cls, sandbox_id: str, name: Optional[str] = None, *, mode: Optional[str] = None, **opts: Any) -> SnapshotInfo:
        return _native.Sandbox.create_snapshot_by_id(sandbox_id, name, conn(cls._resolve_api_params(**opts), "create_snapshot"), mode).wait()

    @class_method_variant("_cls_list_snapshots")
    def list_snapshots(self, limit: Optional[int] = None, next_token: Optional[str] = None, name: Optional[str] = None, **opts: Any) -> SnapshotPaginator:  # type: ignore[misc]
        """Snapshots taken from this sandbox."""
        if opts:
            return type(self)._cls_list_snapshots(self.sandbox_id, limit, next_token, name, **{**self._opts, **opts})
        return SnapshotPaginator(self._s.list_own_snapshots(limit, next_token, name))

    @classmethod
    def _cls_list_snapshots(cls, sandbox_id: Optional[str] = None, limit: Optional[int] = None, next_token: Optional[str] = None, name: Optional[str] = None, **opts: Any) -> SnapshotPaginator:
        return SnapshotPaginator(_native.Sandbox.list_snapshots(sandbox_id, limit, next_token, name, conn(cls._resolve_api_params(**opts), "list_snapshots")))

    @classmethod
    def delete_snapshot(cls, snapshot_id: str, **opts: Any) -> bool:
        """Delete a snapshot; True when deleted, False when it was not found."""
        return _native.Sandbox.delete_snapshot(snapshot_id, conn(cls._resolve_api_params(**opts), "delete_snapshot")).wait()
