"""``get_transport`` for synchronous httpx clients (E2B's ``e2b.api.client_sync``)."""

from typing import Any, Optional

from .._utils import refuse


def get_transport(config: Any, *, http_version: Optional[str] = None, for_streaming: bool = False,
                  retry_connect: bool = True) -> Any:
    """An ``httpx.HTTPTransport`` for requests to a sandbox (``config``: the sandbox's
    ``connection_config``). HTTP/1.1 only: ``http_version`` ``"2"`` is refused."""
    import httpx

    if http_version not in (None, "1.1"):
        refuse(http_version=http_version)
    return httpx.HTTPTransport(retries=1 if retry_connect else 0)
