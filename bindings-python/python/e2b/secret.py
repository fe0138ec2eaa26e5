"""E2B's secrets: ``Secret`` / ``AsyncSecret`` (named, versioned, write-only values), their
paginators and ``SecretInfo``. The calls and their errors live in the core (``e2b::secret``)."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Dict, List, Optional

from . import _native
from ._utils import ClientFactory, conn
from .paginator import _PaginatorBase
from .types import SandboxIamToken, SandboxIamTokenType


@dataclass
class SecretInfo:
    """Metadata of a secret. Secret values are write-only and never returned."""

    secret_id: str
    """Secret ID."""
    name: str
    """Secret name, unique within the project."""
    version: int
    """Version served to readers that do not name one."""
    metadata: Dict[str, str]
    """Customer metadata of the secret."""
    created_at: datetime
    """Time when the secret was created."""
    updated_at: datetime
    """Time when the secret was last updated."""


def _info(t: Any) -> SecretInfo:
    return SecretInfo(*t)


class _SecretPaginatorBase(_PaginatorBase):
    def _op(self, opts: Dict[str, Any]) -> "_native.Op":
        return self._p.next_items(conn(opts, "next_items") if opts else None)


class SecretPaginator(_SecretPaginatorBase):
    """Paginator over the project's secrets: ``while p.has_next: p.next_items()``."""

    def next_items(self, **opts: Any) -> List[SecretInfo]:
        """The next page; ``opts`` (``api_key``, ``request_timeout``, ...) override the
        paginator's connection options for this call."""
        return [_info(t) for t in self._op(opts).wait()]


class AsyncSecretPaginator(_SecretPaginatorBase):
    """Paginator over the project's secrets: ``while p.has_next: await p.next_items()``."""

    async def next_items(self, **opts: Any) -> List[SecretInfo]:
        """The next page; ``opts`` override the paginator's connection options for this call."""
        return [_info(t) for t in await self._op(opts).awaitable()]


class _SecretBase(ClientFactory):
    @classmethod
    def _conn(cls, opts: Dict[str, Any], fn: str) -> Optional["_native.ConnectionOpts"]:
        return conn(cls._resolve_api_params(**opts), fn)

    @staticmethod
    def fill(secret: str) -> str:
        """The placeholder the runtime resolves to the secret's current value, e.g.
        ``Secret.fill("openai-api-key") == "${e2b.secrets.openai-api-key}"`` (no request)."""
        return _native.secret_fill(secret)

    @staticmethod
    def iam_token(*, audience: str, token_type: SandboxIamTokenType) -> SandboxIamToken:
        """A workload identity token definition for ``iam.tokens`` (no request); transform rules put
        the token in requests with ``ctx.iam.tokens[name]`` (``${e2b.identity.tokens.<name>}``)."""
        return SandboxIamToken(audience=audience, token_type=token_type)


class Secret(_SecretBase):
    """Secrets of the project. Values are write-only: accepted by ``create`` and ``update``,
    never returned."""

    @classmethod
    def create(cls, name: str, value: str, metadata: Optional[Dict[str, str]] = None, **opts: Any) -> SecretInfo:
        """Create a secret; ``value`` becomes its version 1."""
        return _info(_native.secret_create(name, value, metadata, cls._conn(opts, "create")).wait())

    @classmethod
    def update(cls, secret: str, value: str, metadata: Optional[Dict[str, str]] = None, **opts: Any) -> SecretInfo:
        """Store ``value`` as the next version of ``secret`` (ID or name); ``metadata``, when
        given, replaces the stored metadata. ``SecretNotFoundException`` if there is none."""
        return _info(_native.secret_update(secret, value, metadata, cls._conn(opts, "update")).wait())

    @classmethod
    def get_info(cls, secret: str, **opts: Any) -> SecretInfo:
        """A secret's metadata (``SecretNotFoundException`` if there is none)."""
        return _info(_native.secret_get_info(secret, cls._conn(opts, "get_info")).wait())

    @classmethod
    def list(cls, limit: Optional[int] = None, next_token: Optional[str] = None, **opts: Any) -> SecretPaginator:
        """A paginator over the secrets, newest first (no request until ``next_items``)."""
        return SecretPaginator(_native.secret_list(limit, next_token, cls._conn(opts, "list")))

    @classmethod
    def exists(cls, secret: str, **opts: Any) -> bool:
        """Whether the secret exists."""
        return _native.secret_exists(secret, cls._conn(opts, "exists")).wait()

    @classmethod
    def destroy(cls, secret: str, **opts: Any) -> bool:
        """Delete the secret and all its versions: True if deleted, False if not found."""
        return _native.secret_destroy(secret, cls._conn(opts, "destroy")).wait()


class AsyncSecret(_SecretBase):
    """``Secret`` with awaitable calls."""

    @classmethod
    async def create(cls, name: str, value: str, metadata: Optional[Dict[str, str]] = None, **opts: Any) -> SecretInfo:
        """Create a secret; ``value`` becomes its version 1."""
        return _info(await _native.secret_create(name, value, metadata, cls._conn(opts, "create")).awaitable())

    @classmethod
    async def update(cls, secret: str, value: str, metadata: Optional[Dict[str, str]] = None, **opts: Any) -> SecretInfo:
        """Store ``value`` as the next version of ``secret``; ``metadata`` replaces the stored one."""
        return _info(await _native.secret_update(secret, value, metadata, cls._conn(opts, "update")).awaitable())

    @classmethod
    async def get_info(cls, secret: str, **opts: Any) -> SecretInfo:
        """A secret's metadata (``SecretNotFoundException`` if there is none)."""
        return _info(await _native.secret_get_info(secret, cls._conn(opts, "get_info")).awaitable())

    @classmethod
    def list(cls, limit: Optional[int] = None, next_token: Optional[str] = None, **opts: Any) -> AsyncSecretPaginator:
        """A paginator over the secrets, newest first (no request until ``next_items``)."""
        return AsyncSecretPaginator(_native.secret_list(limit, next_token, cls._conn(opts, "list")))

    @classmethod
    async def exists(cls, secret: str, **opts: Any) -> bool:
        """Whether the secret exists."""
        return await _native.secret_exists(secret, cls._conn(opts, "exists")).awaitable()

    @classmethod
    async def destroy(cls, secret: str, **opts: Any) -> bool:
        """Delete the secret and all its versions: True if deleted, False if not found."""
        return await _native.secret_destroy(secret, cls._conn(opts, "destroy")).awaitable()
