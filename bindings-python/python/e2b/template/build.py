"""``Template`` (sync) and ``AsyncTemplate``: building through E2B's template API. The core
does the requests, uploads, polling and log streaming (one ``_native.Op`` per call)."""

from typing import Any, Callable, List, Optional, Union

from .. import _native
from .._utils import ClientFactory, conn
from ..exceptions import TemplateException
from .logger import LogEntry, _entry
from .main import TemplateBase, TemplateClass
from .types import (
    BuildInfo,
    BuildStatusReason,
    TemplateBuildStatus,
    TemplateBuildStatusResponse,
    TemplateTag,
    TemplateTagInfo,
)


def _name(name: Optional[str], alias: Optional[str]) -> str:
    if name:
        return name
    if alias:
        return alias
    raise TemplateException("Name must be provided")


def _log_cb(on_build_logs: Optional[Callable[[LogEntry], None]]) -> Optional[Callable[..., None]]:
    if on_build_logs is None:
        return None
    return lambda kind, ts, level, msg: on_build_logs(_entry(kind, ts, level, msg))


def _build_op(template: TemplateClass, name: Optional[str], alias: Optional[str], tags, cpu_count, memory_mb,
              min_free_disk_mb, skip_cache, on_build_logs, opts, fn: str, wait: bool) -> Any:
    n = _name(name, alias)
    return _native.TemplateCore.build(
        template._template._core, n, tags, cpu_count, memory_mb, min_free_disk_mb, bool(skip_cache),
        _log_cb(on_build_logs), conn(opts, fn), wait,
    )


def _info(d: dict) -> BuildInfo:
    return BuildInfo(**d)


def _status(d: dict) -> TemplateBuildStatusResponse:
    reason = d["reason"]
    return TemplateBuildStatusResponse(
        build_id=d["build_id"],
        template_id=d["template_id"],
        status=TemplateBuildStatus(d["status"]),
        log_entries=[_entry(*e) for e in d["log_entries"]],
        logs=d["logs"],
        reason=None if reason is None else BuildStatusReason(
            message=reason["message"], step=reason["step"], log_entries=[_entry(*e) for e in reason["log_entries"]]
        ),
    )


def _tags(v: List[tuple]) -> List[TemplateTag]:
    return [TemplateTag(tag=t, build_id=b, created_at=c) for t, b, c in v]


def _norm_tags(tags: Union[str, List[str]]) -> List[str]:
    return [tags] if isinstance(tags, str) else list(tags)


class Template(TemplateBase, ClientFactory):
    """Synchronous template builder for E2B sandboxes."""

    @classmethod
    def build(
        cls,
        template: TemplateClass,
        name: Optional[str] = None,
        *,
        alias: Optional[str] = None,
        tags: Optional[List[str]] = None,
        cpu_count: Optional[int] = None,
        memory_mb: Optional[int] = None,
        min_free_disk_mb: Optional[int] = None,
        skip_cache: bool = False,
        on_build_logs: Optional[Callable[[LogEntry], None]] = None,
        **opts: Any,
    ) -> BuildInfo:
        """Build ``template`` as ``name`` (``name`` or ``name:tag``) and wait until it is ready."""
        return _info(_build_op(template, name, alias, tags, cpu_count, memory_mb, min_free_disk_mb, skip_cache,
                               on_build_logs, cls._resolve_api_params(**opts), "build", True).wait())

    @classmethod
    def build_in_background(
        cls,
        template: TemplateClass,
        name: Optional[str] = None,
        *,
        alias: Optional[str] = None,
        tags: Optional[List[str]] = None,
        cpu_count: Optional[int] = None,
        memory_mb: Optional[int] = None,
        min_free_disk_mb: Optional[int] = None,
        skip_cache: bool = False,
        on_build_logs: Optional[Callable[[LogEntry], None]] = None,
        **opts: Any,
    ) -> BuildInfo:
        """Start building ``template`` and return without waiting."""
        return _info(_build_op(template, name, alias, tags, cpu_count, memory_mb, min_free_disk_mb, skip_cache,
                               on_build_logs, cls._resolve_api_params(**opts), "build_in_background", False).wait())

    @classmethod
    def get_build_status(cls, build_info: BuildInfo, logs_offset: Optional[int] = None, **opts: Any):
        """Status and new log entries of a build."""
        return _status(_native.TemplateCore.get_build_status(
            build_info.template_id, build_info.build_id, logs_offset, conn(cls._resolve_api_params(**opts), "get_build_status")).wait())

    @classmethod
    def exists(cls, name: str, **opts: Any) -> bool:
        """Whether a template with this name exists."""
        return _native.TemplateCore.exists(name, conn(cls._resolve_api_params(**opts), "exists")).wait()

    @classmethod
    def alias_exists(cls, alias: str, **opts: Any) -> bool:
        """Deprecated: use ``exists``."""
        return _native.TemplateCore.exists(alias, conn(cls._resolve_api_params(**opts), "alias_exists")).wait()

    @classmethod
    def assign_tags(cls, target_name: str, tags: Union[str, List[str]], **opts: Any) -> TemplateTagInfo:
        """Assign tags to the build ``target_name`` (``name:tag``) points to."""
        b, t = _native.TemplateCore.assign_tags(target_name, _norm_tags(tags), conn(cls._resolve_api_params(**opts), "assign_tags")).wait()
        return TemplateTagInfo(build_id=b, tags=t)

    @classmethod
    def remove_tags(cls, name: str, tags: Union[str, List[str]], **opts: Any) -> None:
        """Remove tags from a template."""
        _native.TemplateCore.remove_tags(name, _norm_tags(tags), conn(cls._resolve_api_params(**opts), "remove_tags")).wait()

    @classmethod
    def get_tags(cls, template_id: str, **opts: Any) -> List[TemplateTag]:
        """All tags of a template."""
        return _tags(_native.TemplateCore.get_tags(template_id, conn(cls._resolve_api_params(**opts), "get_tags")).wait())


class AsyncTemplate(TemplateBase, ClientFactory):
    """Asynchronous template builder for E2B sandboxes."""

    @classmethod
    async def build(
        cls,
        template: TemplateClass,
        name: Optional[str] = None,
        *,
        alias: Optional[str] = None,
        tags: Optional[List[str]] = None,
        cpu_count: Optional[int] = None,
        memory_mb: Optional[int] = None,
        min_free_disk_mb: Optional[int] = None,
        skip_cache: bool = False,
        on_build_logs: Optional[Callable[[LogEntry], None]] = None,
        **opts: Any,
    ) -> BuildInfo:
        """Build ``template`` as ``name`` and wait until it is ready."""
        return _info(await _build_op(template, name, alias, tags, cpu_count, memory_mb, min_free_disk_mb, skip_cache,
                                     on_build_logs, cls._resolve_api_params(**opts), "build", True).awaitable())

    @classmethod
    async def build_in_background(
        cls,
        template: TemplateClass,
        name: Optional[str] = None,
        *,
        alias: Optional[str] = None,
        tags: Optional[List[str]] = None,
        cpu_count: Optional[int] = None,
        memory_mb: Optional[int] = None,
        min_free_disk_mb: Optional[int] = None,
        skip_cache: bool = False,
        on_build_logs: Optional[Callable[[LogEntry], None]] = None,
        **opts: Any,
    ) -> BuildInfo:
        """Start building ``template`` and return without waiting."""
        return _info(await _build_op(template, name, alias, tags, cpu_count, memory_mb, min_free_disk_mb, skip_cache,
                                     on_build_logs, cls._resolve_api_params(**opts), "build_in_background", False).awaitable())

    @classmethod
    async def get_build_status(cls, build_info: BuildInfo, logs_offset: Optional[int] = None, **opts: Any):
        """Status and new log entries of a build."""
        return _status(await _native.TemplateCore.get_build_status(
            build_info.template_id, build_info.build_id, logs_offset, conn(cls._resolve_api_params(**opts), "get_build_status")).awaitable())

    @classmethod
    async def exists(cls, name: str, **opts: Any) -> bool:
        """Whether a template with this name exists."""
        return await _native.TemplateCore.exists(name, conn(cls._resolve_api_params(**opts), "exists")).awaitable()

    @classmethod
    async def alias_exists(cls, alias: str, **opts: Any) -> bool:
        """Deprecated: use ``exists``."""
        return await _native.TemplateCore.exists(alias, conn(cls._resolve_api_params(**opts), "alias_exists")).awaitable()

    @classmethod
    async def assign_tags(cls, target_name: str, tags: Union[str, List[str]], **opts: Any) -> TemplateTagInfo:
        """Assign tags to the build ``target_name`` (``name:tag``) points to."""
        b, t = await _native.TemplateCore.assign_tags(target_name, _norm_tags(tags), conn(cls._resolve_api_params(**opts), "assign_tags")).awaitable()
        return TemplateTagInfo(build_id=b, tags=t)

    @classmethod
    async def remove_tags(cls, name: str, tags: Union[str, List[str]], **opts: Any) -> None:
        """Remove tags from a template."""
        await _native.TemplateCore.remove_tags(name, _norm_tags(tags), conn(cls._resolve_api_params(**opts), "remove_tags")).awaitable()

    @classmethod
    async def get_tags(cls, template_id: str, **opts: Any) -> List[TemplateTag]:
        """All tags of a template."""
        return _tags(await _native.TemplateCore.get_tags(template_id, conn(cls._resolve_api_params(**opts), "get_tags")).awaitable())
