"""Paginators (E2B's ``PaginatorBase``): ``has_next`` / ``next_token`` properties and
``next_items()``; construction is synchronous and makes no request. ``next_items()`` after the
last page raises ``Exception("No more items to fetch")``."""

from typing import Any, List, Optional

from . import _native
from ._native import SandboxInfo, SnapshotInfo


class _PaginatorBase:
    def __init__(self, native: "_native.SandboxPaginator | _native.SnapshotPaginator | _native.SecretPaginator") -> None:
        self._p: Any = native

    @property
    def has_next(self) -> bool:
        """True while more items may be fetched."""
        return self._p.has_next

    @property
    def next_token(self) -> Optional[str]:
        """The token the next page will be fetched with."""
        return self._p.next_token


class SandboxPaginator(_PaginatorBase):
    def next_items(self) -> List[SandboxInfo]:
        return self._p.next_items().wait()


class SnapshotPaginator(_PaginatorBase):
    def next_items(self) -> List[SnapshotInfo]:
        return self._p.next_items().wait()


class AsyncSandboxPaginator(_PaginatorBase):
    async def next_items(self) -> List[SandboxInfo]:
        return await self._p.next_items().awaitable()


class AsyncSnapshotPaginator(_PaginatorBase):
    async def next_items(self) -> List[SnapshotInfo]:
        return await self._p.next_items().awaitable()
