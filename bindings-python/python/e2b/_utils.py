"""Small helpers shared by the sync and async classes."""

import asyncio
import functools
import inspect
import json
from typing import Any, Callable, Dict, Optional, Tuple, Type, TypeVar

from . import _native

F = TypeVar("F", bound=Callable[..., Any])

#: Connection options accepted as ``**opts`` (E2B's ``ApiParams``) and passed to the core.
CONNECTION_KEYS = ("api_key", "domain", "api_url", "sandbox_url", "debug", "request_timeout", "headers")
#: ``ApiParams`` this SDK does not implement: refused when set, never ignored.
UNSUPPORTED_KEYS = ("retries", "api_headers", "proxy", "http_version")
#: Deprecated in E2B's SDK, where it has no effect any more (so it has none here either).
NO_OP_KEYS = ("validate_api_key",)


def pick(opts: Dict[str, Any], fn: str, keys: Tuple[str, ...], unsupported: Tuple[str, ...],
         no_op: Tuple[str, ...] = ()) -> Dict[str, Any]:
    """The ``keys`` of ``**opts`` that are set. An unknown keyword is a ``TypeError``, as for any
    Python function; an ``unsupported`` one that is set is refused."""
    for k, v in opts.items():
        if k in unsupported:
            if v is not None:
                raise _native.unsupported_option(k)
        elif k not in keys and k not in no_op:
            raise TypeError(f"{fn}() got an unexpected keyword argument '{k}'")
    return {k: opts[k] for k in keys if opts.get(k) is not None}


def conn(opts: Dict[str, Any], fn: str = "method") -> Optional[_native.ConnectionOpts]:
    """Native connection options from ``**opts`` (None when none of them is set)."""
    picked = pick(opts, fn, CONNECTION_KEYS, UNSUPPORTED_KEYS, NO_OP_KEYS)
    return _native.ConnectionOpts(**picked) if picked else None


class ClientFactory:
    """Base of the resource classes (``Sandbox``, ``Template``, ``Secret``) whose class methods
    take connection params. An ``E2B`` client exposes subclasses with its params bound; every
    class method resolves the per-call params over them (E2B's ``ClientFactory``)."""

    _bound_api_params: Dict[str, Any] = {}

    @classmethod
    def _resolve_api_params(cls, **opts: Any) -> Dict[str, Any]:
        """Per-call params over the bound ones; a per-call ``None`` falls back to the bound value."""
        if not cls._bound_api_params:
            return opts
        merged = dict(cls._bound_api_params)
        merged.update({k: v for k, v in opts.items() if v is not None})
        return merged


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


def refuse(**options: Any) -> None:
    """Raise ``InvalidArgumentException`` for the first option given that this SDK lacks."""
    for name, value in options.items():
        if value is not None:
            raise _native.unsupported_option(name)


IDENTITY_PLACEHOLDER = "${{e2b.identity.tokens.{}}}"


class _TokenPlaceholders(dict):
    """``ctx.iam.tokens`` of a transform callable: the placeholder of each registered token; an
    unregistered name is an error here rather than an auth failure at the destination."""

    def __missing__(self, name: str) -> str:
        from .exceptions import InvalidArgumentException

        raise InvalidArgumentException(
            f"Network transform references iam token {name!r}, which is not registered (iam.tokens)"
        )


def resolve_network(network: Optional[Dict[str, Any]], iam: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """Runs the callables of ``network`` as E2B's SDK does: a rule's ``transform`` gets a context
    whose ``iam.tokens`` holds the placeholders of ``iam``'s tokens, ``allow_out`` / ``deny_out``
    get the rules and ``all_traffic``. What goes to the core is plain data."""
    if not isinstance(network, dict):
        return network
    from .types import SandboxNetworkSelectorContext, SandboxNetworkTransformContext

    names = list(((iam or {}).get("tokens") or {}).keys())
    ctx = SandboxNetworkTransformContext()
    ctx.iam.tokens = _TokenPlaceholders({n: IDENTITY_PLACEHOLDER.format(n) for n in names})
    out = dict(network)
    if isinstance(network.get("rules"), dict):
        out["rules"] = {
            host: [
                {**r, "transform": r["transform"](ctx)} if isinstance(r, dict) and callable(r.get("transform")) else r
                for r in (rules or [])
            ]
            for host, rules in network["rules"].items()
        }
    for key in ("allow_out", "allowOut", "deny_out", "denyOut"):
        if callable(out.get(key)):
            out[key] = out[key](SandboxNetworkSelectorContext(out.get("rules")))
    return out


def as_json(name: str, value: Any) -> Optional[str]:
    """A dict option (``lifecycle``, ``network``) as JSON for the core, which validates it.
    Values JSON cannot carry (e.g. callable network selectors) are refused, not dropped."""
    if value is None:
        return None

    def reject(o: Any) -> Any:
        what = "a callable" if callable(o) else f"a {type(o).__name__}"
        raise _native.unsupported_option(f"{name} with {what} value")

    return json.dumps(value, default=reject)


def on_loop(cb: Optional[Callable[..., Any]]) -> Optional[Callable[..., Any]]:
    """An async API's callback as the core calls it (from its own thread): a coroutine it returns
    is scheduled on the caller's event loop, so ``async def`` handlers run too."""
    if cb is None:
        return None
    loop = asyncio.get_running_loop()

    def call(*args: Any) -> None:
        r = cb(*args)
        if inspect.isawaitable(r):
            asyncio.run_coroutine_threadsafe(r, loop)  # type: ignore[arg-type]

    return call


def mounts(volume_mounts: Optional[Dict[str, Any]]) -> Optional[list]:
    """``volume_mounts`` (mount path → ``Volume`` or volume name) as ``(path, name)`` pairs."""
    if not volume_mounts:
        return None
    out = []
    for path, vol in volume_mounts.items():
        name = vol if isinstance(vol, str) else getattr(vol, "name", None)
        if not isinstance(name, str):
            raise TypeError(f"volume_mounts[{path!r}] must be a Volume or a volume name, got {type(vol).__name__}")
        out.append((path, name))
    return out
