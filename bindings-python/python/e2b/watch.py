"""Directory watch handles: ``WatchHandle`` (sync, polling: ``get_new_events()``) and
``AsyncWatchHandle`` (async, events pushed to ``on_event``)."""

from typing import List, Optional

from . import _native
from .models import FilesystemEvent, _event


class WatchHandle:
    """Events accumulate in the sandbox until ``get_new_events()``; ``stop()`` ends the watch."""

    def __init__(self, native: _native.PollingWatcher) -> None:
        self._w = native

    def get_new_events(self, request_timeout: Optional[float] = None) -> List[FilesystemEvent]:
        return [_event(e) for e in self._w.get_new_events(request_timeout).wait()]

    def stop(self, request_timeout: Optional[float] = None) -> None:
        self._w.stop(request_timeout).wait()


class AsyncWatchHandle:
    def __init__(self, native: _native.WatchHandle) -> None:
        self._w = native

    async def stop(self) -> None:
        self._w.stop()
