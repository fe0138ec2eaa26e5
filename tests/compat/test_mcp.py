"""The MCP gateway option (`Sandbox.create(mcp=...)`, `get_mcp_url`, `get_mcp_token`) through the
official SDKs: sandboxd accepts the `mcp` field, the SDK creates from the `mcp-gateway` template
and starts the gateway in the sandbox. The template here is built with the official `Template`
builder from `base` plus a stand-in gateway (tests/fixtures/mcp-gateway)."""

import json
import shutil
from pathlib import Path

import pytest

from guest_net import request
from official_js import run_js

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "mcp-gateway"
SERVERS = {"exa": {"apiKey": "k-1"}, "github/acme/tool": {"run_cmd": "tool --stdio"}}


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    from conftest import Sandboxd, build_base_template
    from e2b import Template

    build_base_template()
    server = Sandboxd(tmp_path_factory.mktemp("mcp"))
    server.start()
    ctx = tmp_path_factory.mktemp("mcp-ctx")
    shutil.copy(FIXTURE, ctx / "mcp-gateway")
    template = Template(file_context_path=str(ctx)).from_template("base").copy(
        "mcp-gateway", "/usr/local/bin/mcp-gateway", mode=0o755, user="root")
    Template.build(template, "mcp-gateway", api_url=server.url, api_key=server.key)
    yield server
    server.stop()


def sbx_opts(server):
    return {"api_url": server.url, "sandbox_url": server.url, "api_key": server.key}


def test_create_with_mcp_starts_the_gateway_from_the_mcp_template(srv):
    from e2b import Sandbox

    sbx = Sandbox.create(mcp=SERVERS, timeout=120, **sbx_opts(srv))
    try:
        token = sbx.get_mcp_token()
        assert token and len(token) == 36 and token.count("-") == 4, token
        assert sbx.get_mcp_url() == f"https://{sbx.get_host(50005)}/mcp"
        assert sbx.files.read("/etc/mcp-gateway/.token", user="root") == token
        assert json.loads(sbx.files.read("/etc/mcp-gateway/config.json", user="root")) == SERVERS
        # The gateway answers through sandboxd's port proxy, with the token only.
        status, body, _ = request(srv.url, sbx.get_host(50005), "/mcp", headers={"Authorization": f"Bearer {token}"})
        assert status == 200 and json.loads(body) == {"servers": sorted(SERVERS)}, body
        assert request(srv.url, sbx.get_host(50005), "/mcp")[0] == 401
        # Another handle reads the token from the sandbox.
        assert Sandbox.connect(sbx.sandbox_id, **sbx_opts(srv)).get_mcp_token() == token
    finally:
        sbx.kill()


def test_a_gateway_that_fails_kills_the_sandbox(srv):
    from e2b import Sandbox
    from e2b.exceptions import SandboxException

    before = {s.sandbox_id for s in Sandbox.list(**sbx_opts(srv)).next_items()}
    with pytest.raises(SandboxException, match="Failed to start MCP gateway: .*'broken' failed to start"):
        Sandbox.create(mcp={"broken": {}}, timeout=60, **sbx_opts(srv))
    # `base` has no gateway at all.
    with pytest.raises(SandboxException, match="Failed to start MCP gateway: .*mcp-gateway: command not found"):
        Sandbox.create("base", mcp={"exa": {}}, timeout=60, **sbx_opts(srv))
    assert {s.sandbox_id for s in Sandbox.list(**sbx_opts(srv)).next_items()} == before


def test_bad_mcp_values_are_refused_by_the_server(srv):
    import urllib.error
    import urllib.request

    req = urllib.request.Request(f"{srv.url}/sandboxes", method="POST",
                                 data=json.dumps({"templateID": "base", "mcp": ["exa"]}).encode(),
                                 headers={"X-API-KEY": srv.key, "Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=30)
    assert e.value.code == 400 and "mcp must be an object" in json.loads(e.value.read())["message"]


def test_the_official_js_sdk_starts_the_gateway_too(srv):
    out = run_js("""
import { Sandbox } from 'e2b'
const sbx = await Sandbox.create({ mcp: { exa: { apiKey: 'k-js' } }, timeoutMs: 120000 })
const token = await sbx.getMcpToken()
const config = JSON.parse(await sbx.files.read('/etc/mcp-gateway/config.json', { user: 'root' }))
const url = sbx.getMcpUrl()
const host = sbx.getHost(50005)
await sbx.kill()
console.log(JSON.stringify({ token, config, url, host }))
""", server=srv)
    assert len(out["token"]) == 36 and out["config"] == {"exa": {"apiKey": "k-js"}}
    assert out["url"] == f"https://{out['host']}/mcp"
