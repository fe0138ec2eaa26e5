"""``ConnectionConfig``: resolved connection settings (E2B's class of the same name), as a sandbox's
``connection_config`` or built from ``ApiParams``. Resolution is the core's."""

from typing import Any, Dict, Optional

from . import _native
from ._utils import conn


class ConnectionConfig:
    """Where requests go: ``api_url``, ``sandbox_url``, ``domain``, ``debug``, ``api_key``,
    ``request_timeout`` (seconds, ``None`` = none) and extra ``headers``."""

    envd_port = 49983

    def __init__(self, **opts: Any) -> None:
        native = conn(opts, "ConnectionConfig")
        self._c = (native or _native.ConnectionOpts()).resolve()

    @classmethod
    def _of(cls, native: "_native.ConnectionConfig") -> "ConnectionConfig":
        c = cls.__new__(cls)
        c._c = native
        return c

    @property
    def api_key(self) -> Optional[str]:
        return self._c.api_key

    @property
    def domain(self) -> str:
        return self._c.domain

    @property
    def api_url(self) -> str:
        return self._c.api_url

    @property
    def sandbox_url(self) -> Optional[str]:
        return self._c.sandbox_url

    @property
    def debug(self) -> bool:
        return self._c.debug

    @property
    def request_timeout(self) -> Optional[float]:
        return self._c.request_timeout

    @property
    def headers(self) -> Dict[str, str]:
        return self._c.headers

    def get_sandbox_url(self, sandbox_id: str, sandbox_domain: Optional[str] = None, port: Optional[int] = None) -> str:
        """Base URL of a sandbox's ``port`` (envd's by default): ``sandbox_url`` when set (requests
        then carry ``E2b-Sandbox-Id`` / ``E2b-Sandbox-Port``), else ``https://<port>-<id>.<domain>``."""
        return self._c.sandbox_url_for(sandbox_id, sandbox_domain, port)

    def get_host(self, sandbox_id: str, sandbox_domain: Optional[str], port: int) -> str:
        """``<port>-<id>.<domain>`` (``localhost:<port>`` in debug mode)."""
        return self._c.host_for(sandbox_id, sandbox_domain, port)

    def __repr__(self) -> str:
        return repr(self._c)
