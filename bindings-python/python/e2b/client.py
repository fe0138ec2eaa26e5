"""``E2B``: a client with its own connection params bound to the resource classes, as in E2B's
SDK (``client = E2B(api_key=..., api_url=...); client.Sandbox.create()``)."""

from typing import Any, Dict, Type, TypeVar

from ._utils import conn
from .sandbox import Sandbox
from .sandbox_async import AsyncSandbox
from .secret import AsyncSecret, Secret
from .template.build import AsyncTemplate, Template
from .volume import AsyncVolume, Volume
from .types import ApiParams

T = TypeVar("T")


class E2BClientParams(ApiParams, total=False):
    """Params bound to an ``E2B`` client: the defaults of every call made through its classes
    (same shape as ``ApiParams``)."""


def _bind(cls: Type[T], params: Dict[str, Any]) -> Type[T]:
    """A subclass of ``cls`` carrying ``params`` as its bound params."""
    return type(cls.__name__, (cls,), {"_bound_api_params": params})


class E2B:
    """A client whose resource classes (``Sandbox``, ``AsyncSandbox``, ``Volume``,
    ``AsyncVolume``, ``Template``, ``AsyncTemplate``, ``Secret``, ``AsyncSecret``) behave like
    the top-level ones, with the client's params as defaults instead of the environment.
    Per-call params still win; clients are isolated from each other and from the top-level
    classes."""

    def __init__(self, **opts: Any) -> None:
        # Refuse unknown and unimplemented params now, not at the first call.
        conn(opts, "E2B")
        params = dict(opts)
        self.Sandbox = _bind(Sandbox, params)
        """``Sandbox`` bound to this client's params."""
        self.AsyncSandbox = _bind(AsyncSandbox, params)
        """``AsyncSandbox`` bound to this client's params."""
        self.Volume = _bind(Volume, params)
        """``Volume`` bound to this client's params."""
        self.AsyncVolume = _bind(AsyncVolume, params)
        """``AsyncVolume`` bound to this client's params."""
        self.Template = _bind(Template, params)
        """``Template`` bound to this client's params."""
        self.AsyncTemplate = _bind(AsyncTemplate, params)
        """``AsyncTemplate`` bound to this client's params."""
        self.Secret = _bind(Secret, params)
        """``Secret`` bound to this client's params."""
        self.AsyncSecret = _bind(AsyncSecret, params)
        """``AsyncSecret`` bound to this client's params."""
