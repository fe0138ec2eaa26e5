"""``E2B``, the client factory, against a real sandboxd: its classes use the client's params
instead of the environment, per-call params still win, and clients stay isolated from each other
and from the top-level classes."""

import asyncio
import uuid

import pytest

from e2b import E2B, AuthenticationException, InvalidArgumentException, Sandbox, Secret, Template

from conftest import Server

BAD_KEY = "e2b_" + "0" * 40


def test_bound_params_are_the_defaults_and_per_call_params_win(sandboxd: Server):
    good = E2B(api_url=sandboxd.url, api_key=sandboxd.api_key, sandbox_url=sandboxd.url)
    bad = E2B(api_url=sandboxd.url, api_key=BAD_KEY)
    name = f"client-{uuid.uuid4().hex[:8]}"

    # The bad client's key is used for every class (the environment's would work).
    for call in (lambda: bad.Secret.create(name, "v"), lambda: bad.Sandbox.list().next_items(),
                 lambda: bad.Template.exists("base"), lambda: bad.Sandbox.create()):
        with pytest.raises(AuthenticationException):
            call()
    # A per-call key wins over the bound one; None falls back to the bound one.
    info = bad.Secret.create(name, "v", api_key=sandboxd.api_key)
    with pytest.raises(AuthenticationException):
        bad.Secret.get_info(name, api_key=None)
    assert good.Secret.get_info(name) == info
    assert good.Template.exists("base") is True

    # Top-level classes and other clients are untouched.
    assert Secret.get_info(name) == info
    assert Secret._bound_api_params == {} and Sandbox._bound_api_params == {}
    assert issubclass(good.Sandbox, Sandbox) and good.Sandbox is not bad.Sandbox
    good.Secret.destroy(name)


def test_a_sandbox_through_a_client(sandboxd: Server):
    client = E2B(api_url=sandboxd.url, api_key=sandboxd.api_key, sandbox_url=sandboxd.url)
    sbx = client.Sandbox.create(timeout=60)
    try:
        assert sbx.commands.run("echo ok").stdout == "ok\n"
        assert sbx.sandbox_id in [s.sandbox_id for s in client.Sandbox.list().next_items()]
        assert client.Sandbox.get_info(sbx.sandbox_id).sandbox_id == sbx.sandbox_id

        async def via_async():
            a = await client.AsyncSandbox.connect(sbx.sandbox_id)
            return (await a.commands.run("echo async")).stdout

        assert asyncio.run(via_async()) == "async\n"
    finally:
        assert client.Sandbox.kill(sbx.sandbox_id) is True


def test_bad_params_are_refused_when_the_client_is_made(sandboxd: Server):
    with pytest.raises(TypeError, match="unexpected keyword argument 'apikey'"):
        E2B(apikey="x")
    with pytest.raises(InvalidArgumentException, match="'proxy' option is not supported"):
        E2B(proxy="http://proxy:3128")
    assert not hasattr(E2B(), "Nope")
    assert issubclass(E2B().Template, Template)
