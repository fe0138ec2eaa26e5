"""Small helpers shared by the sync and async classes."""

import functools
from typing import Any, Callable, Dict, Optional, Type, TypeVar

from . import _native

F = TypeVar("F", bound=Callable[..., Any])

#: Connection options accepted as ``**opts`` (E2B's ``ApiParams``); others are ignored.
CONNECTION_KEYS = ("api_key", "domain", "api_url", "sandbox_url", "debug", "request_timeout", "headers")


def conn(opts: Dict[str, Any]) -> Optional[_native.ConnectionOpts]:
    """Native connection options from ``**opts`` (None when none of them is set)."""
    picked = {k: opts[k] for k in CONNECTION_KEYS if opts.get(k) is not None}
    if not picked:
        return None
    return _native.ConnectionOpts(**picked)


class class_method_variant:
    """E2B's dual call pattern: ``sbx.kill()`` runs the decorated instance method, while
    ``Sandbox.kill(sandbox_id)`` runs the class method named ``cls_method_name``."""

    def __init__(self, cls_method_name: str) -> None:
        self.cls_method_name = cls_method_name
        self.method: Any = None

    def __call__(self, method: F) -> F:
        self.method = method
        functools.update_wrapper(self, method)
        return self  # type: ignore[return-value]

    def __get__(self, obj: Any, objtype: Optional[Type[Any]] = None) -> Callable[..., Any]:
        if obj is not None:
            return functools.partial(self.method, obj)
        return getattr(objtype, self.cls_method_name)
