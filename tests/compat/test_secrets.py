"""E2B's secrets API through the official SDKs (Python `Secret` / `AsyncSecret`, JS `Secret`):
values go in and never come out, names are canonical and unique, versions count updates,
pages follow `X-Next-Token`, and every failure is the SDK's own secret exception."""

import asyncio
import json
import urllib.error
import urllib.request

import pytest

from official_js import run_js


@pytest.fixture
def srv(make_sandboxd):
    return make_sandboxd()


def opts(server):
    return {"api_url": server.url, "api_key": server.key}


def raw(server, method, path, body=None):
    req = urllib.request.Request(f"{server.url}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"X-API-KEY": server.key, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers


def test_create_get_update_destroy(srv):
    from e2b import Secret
    from e2b.exceptions import SecretNotFoundException

    info = Secret.create("OpenAI-Key", "sk-one", metadata={"team": "ml"}, **opts(srv))
    assert info.secret_id.startswith("sec_") and info.name == "openai-key", info
    assert (info.version, info.metadata) == (1, {"team": "ml"})
    assert info.created_at == info.updated_at

    # By ID, by name, by the name as first written.
    for key in (info.secret_id, "openai-key", "OpenAI-Key"):
        assert Secret.get_info(key, **opts(srv)) == info

    updated = Secret.update("openai-key", "sk-two", **opts(srv))
    assert (updated.version, updated.metadata, updated.created_at) == (2, {"team": "ml"}, info.created_at)
    assert updated.updated_at > info.updated_at
    replaced = Secret.update(info.secret_id, "sk-three", metadata={}, **opts(srv))
    assert (replaced.version, replaced.metadata) == (3, {})

    # The value is never in any response.
    for path in ("/secrets", f"/secrets/{info.secret_id}"):
        status, body, _ = raw(srv, "GET", path)
        assert status == 200 and b"sk-" not in body, body

    assert Secret.exists("openai-key", **opts(srv))
    assert Secret.destroy("openai-key", **opts(srv)) is True
    assert Secret.destroy("openai-key", **opts(srv)) is False
    assert not Secret.exists(info.secret_id, **opts(srv))
    with pytest.raises(SecretNotFoundException, match="Secret openai-key not found"):
        Secret.get_info("openai-key", **opts(srv))
    with pytest.raises(SecretNotFoundException, match="Secret nope not found"):
        Secret.update("nope", "v", **opts(srv))


def test_bad_input_is_the_sdks_secret_exception_and_changes_nothing(srv):
    from e2b import Secret
    from e2b.exceptions import AuthenticationException, SecretException

    Secret.create("db", "pw", **opts(srv))
    with pytest.raises(SecretException, match='409: a secret named "db" already exists'):
        Secret.create("DB", "other", **opts(srv))
    for name, why in [("a{b}", "cannot contain"), ("sec_x", "reserved"), ("", "must not be empty")]:
        with pytest.raises(SecretException, match=f"400: invalid secret name .*{why}"):
            Secret.create(name, "v", **opts(srv))
    with pytest.raises(SecretException, match="400: value must not be empty"):
        Secret.create("empty", "", **opts(srv))
    with pytest.raises(SecretException, match="400: invalid secret metadata: 33 entries"):
        Secret.create("meta", "v", metadata={f"k{i}": "v" for i in range(33)}, **opts(srv))
    with pytest.raises(SecretException, match="400: invalid secret metadata: key"):
        Secret.update("db", "v2", metadata={"k" * 129: "v"}, **opts(srv))
    with pytest.raises(AuthenticationException):
        Secret.create("x", "v", api_url=srv.url, api_key="e2b_" + "0" * 40)
    status, body, _ = raw(srv, "POST", "/secrets", None)
    assert status == 400 and "request body is required" in json.loads(body)["message"]
    status, body, _ = raw(srv, "POST", "/secrets", ["not", "an", "object"])
    assert status == 400 and "invalid JSON body" in json.loads(body)["message"]

    # Nothing above changed `db` or added a secret.
    items = Secret.list(**opts(srv)).next_items()
    assert [(s.name, s.version) for s in items] == [("db", 1)]


def test_list_pages_newest_first(srv):
    from e2b import Secret

    made = [Secret.create(f"s{i}", "v", **opts(srv)).secret_id for i in range(5)]
    paginator = Secret.list(limit=2, **opts(srv))
    pages = []
    while paginator.has_next:
        pages.append([s.secret_id for s in paginator.next_items()])
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [i for p in pages for i in p] == made[::-1]
    with pytest.raises(Exception, match="No more items to fetch"):
        paginator.next_items()
    status, body, _ = raw(srv, "GET", "/secrets?nextToken=garbage")
    assert status == 400 and "invalid next token" in json.loads(body)["message"]
    status, _, _ = raw(srv, "GET", "/secrets?limit=0")
    assert status == 400


def test_async_secret(srv):
    from e2b import AsyncSecret

    async def main():
        info = await AsyncSecret.create("async-one", "v", **opts(srv))
        assert (await AsyncSecret.get_info(info.secret_id, **opts(srv))).name == "async-one"
        assert (await AsyncSecret.update("async-one", "w", **opts(srv))).version == 2
        assert [s.name for s in await AsyncSecret.list(**opts(srv)).next_items()] == ["async-one"]
        assert await AsyncSecret.destroy("async-one", **opts(srv))
        assert not await AsyncSecret.exists("async-one", **opts(srv))

    asyncio.run(main())


def test_the_official_js_sdk(srv):
    out = run_js("""
import { Secret, SecretError, SecretNotFoundError } from 'e2b'
const info = await Secret.create('JS-Key', 'v1', { metadata: { a: 'b' } })
const again = await Secret.getInfo('js-key')
const updated = await Secret.update(info.secretId, 'v2')
const p = Secret.list({ limit: 1 })
const names = []
while (p.hasNext) names.push(...(await p.nextItems()).map((s) => s.name))
let dup = null
try { await Secret.create('js-key', 'x') } catch (e) { dup = [e instanceof SecretError, e.message] }
let missing = null
try { await Secret.getInfo('gone') } catch (e) { missing = [e instanceof SecretNotFoundError, e.message] }
const destroyed = [await Secret.destroy('js-key'), await Secret.destroy('js-key'), await Secret.exists('js-key')]
console.log(JSON.stringify({ info, again, version: updated.version, names, dup, missing, destroyed, fill: Secret.fill('js-key') }))
""", server=srv)
    assert out["info"]["name"] == "js-key" and out["info"]["metadata"] == {"a": "b"}
    assert out["again"]["secretId"] == out["info"]["secretId"] and out["version"] == 2
    assert out["names"] == ["js-key"]
    assert out["dup"] == [True, '409: a secret named "js-key" already exists']
    assert out["missing"][0] is True and "gone" in out["missing"][1]
    assert out["destroyed"] == [True, False, False]
    assert out["fill"] == "${e2b.secrets.js-key}"
