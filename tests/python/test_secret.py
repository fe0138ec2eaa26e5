"""Our SDK's ``Secret`` / ``AsyncSecret`` against a real sandboxd (embedded default): values go in
and never come out, versions count updates, paginators page and take per-call options, and
errors are E2B's secret exceptions."""

import asyncio
import uuid

import pytest

from e2b import (
    AsyncSecret,
    AsyncSecretPaginator,
    AuthenticationException,
    InvalidArgumentException,
    Secret,
    SecretException,
    SecretInfo,
    SecretNotFoundException,
    SecretPaginator,
)

from conftest import Server


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_round_trip(sandboxd: Server):
    name = unique("Py-Key")
    info = Secret.create(name, "s3cr3t", metadata={"owner": "py"})
    assert isinstance(info, SecretInfo)
    assert info.name == name.lower() and info.secret_id.startswith("sec_")
    assert (info.version, info.metadata) == (1, {"owner": "py"})
    assert Secret.get_info(name) == info
    assert Secret.update(info.secret_id, "again").version == 2
    assert Secret.update(name, "third", metadata={"owner": "other"}).metadata == {"owner": "other"}
    assert Secret.exists(name) is True
    assert Secret.destroy(name) is True
    assert (Secret.destroy(name), Secret.exists(name)) == (False, False)
    with pytest.raises(SecretNotFoundException, match=f"Secret {name} not found"):
        Secret.get_info(name)
    with pytest.raises(SecretNotFoundException):
        Secret.update(name, "v")


def test_errors_and_helpers(sandboxd: Server):
    name = unique("dup")
    Secret.create(name, "v")
    with pytest.raises(SecretException, match="409: a secret named"):
        Secret.create(name.upper(), "v")
    with pytest.raises(SecretException, match="400: invalid secret name"):
        Secret.create("sec_reserved", "v")
    with pytest.raises(AuthenticationException):
        Secret.get_info(name, api_key="e2b_" + "0" * 40, api_url=sandboxd.url)
    with pytest.raises(TypeError, match="unexpected keyword argument 'metdata'"):
        Secret.create(name, "v", metdata={})
    assert Secret.fill("openai-api-key") == "${e2b.secrets.openai-api-key}"
    for bad in ("", "a{b", "x\n", 7):
        with pytest.raises(InvalidArgumentException, match="is not usable"):
            Secret.fill(bad)  # type: ignore[arg-type]
    assert Secret.iam_token(audience="sts.amazonaws.com", token_type="JWT-SVID") == {
        "audience": "sts.amazonaws.com", "token_type": "JWT-SVID"}
    Secret.destroy(name)


def test_paginator_pages_and_takes_per_call_options(sandboxd: Server):
    made = [Secret.create(unique("page"), "v").secret_id for _ in range(3)]
    paginator = Secret.list(limit=2)
    assert isinstance(paginator, SecretPaginator) and paginator.has_next
    seen = []
    while paginator.has_next:
        seen.extend(s.secret_id for s in paginator.next_items())
    assert set(made) <= set(seen) and len(seen) == len(set(seen))
    with pytest.raises(Exception, match="No more items to fetch"):
        paginator.next_items()
    # Options given to next_items() are used for that call (a wrong key fails it) ...
    paginator = Secret.list(limit=1)
    with pytest.raises(AuthenticationException):
        paginator.next_items(api_key="e2b_" + "0" * 40, api_url=sandboxd.url)
    # ... and the paginator's own again afterwards.
    assert paginator.has_next and len(paginator.next_items()) == 1
    for i in made:
        Secret.destroy(i)


def test_async(sandboxd: Server):
    name = unique("async")

    async def main():
        info = await AsyncSecret.create(name, "v")
        assert (await AsyncSecret.update(name, "w")).version == 2
        assert await AsyncSecret.get_info(info.secret_id) == (await AsyncSecret.get_info(name))
        paginator = AsyncSecret.list()
        assert isinstance(paginator, AsyncSecretPaginator)
        assert name in [s.name for s in await paginator.next_items()]
        assert await AsyncSecret.exists(name)
        assert await AsyncSecret.destroy(name)
        with pytest.raises(SecretNotFoundException):
            await AsyncSecret.get_info(name)

    asyncio.run(main())
