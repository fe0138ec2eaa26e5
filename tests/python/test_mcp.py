"""Our SDK's MCP gateway option against a real sandboxd: ``create(mcp=...)`` goes to the
``mcp-gateway`` template (built here with our ``Template`` from ``base`` plus the stand-in gateway
in tests/fixtures) and starts the gateway; ``get_mcp_url`` / ``get_mcp_token`` as E2B's SDK; a
gateway that fails kills the sandbox."""

import json
import shutil
import uuid
from pathlib import Path

import pytest

from e2b import AsyncSandbox, Sandbox, SandboxException, Template

from conftest import REPO, Server

SERVERS = {"exa": {"apiKey": "k-py"}}


@pytest.fixture(scope="module")
def gateway_template(sandboxd: Server, tmp_path_factory) -> str:
    ctx = tmp_path_factory.mktemp("mcp-ctx")
    shutil.copy(REPO / "tests" / "fixtures" / "mcp-gateway", ctx / "mcp-gateway")
    name = f"mcp-gw-{uuid.uuid4().hex[:8]}"
    template = Template(file_context_path=ctx).from_template("base").copy(
        "mcp-gateway", "/usr/local/bin/mcp-gateway", mode=0o755, user="root")
    Template.build(template, name)
    return name


def test_mcp_starts_the_gateway(gateway_template: str) -> None:
    class Gw(Sandbox):
        default_mcp_template = gateway_template

    assert Sandbox.default_mcp_template == "mcp-gateway" and Sandbox.mcp_port == 50005
    sbx = Gw.create(mcp=SERVERS, timeout=120)
    try:
        token = sbx.get_mcp_token()
        assert token is not None and str(uuid.UUID(token)) == token and uuid.UUID(token).version == 4
        assert sbx.get_mcp_url() == f"https://{sbx.get_host(50005)}/mcp"
        assert json.loads(sbx.files.read("/etc/mcp-gateway/config.json", user="root")) == SERVERS
        assert Sandbox.connect(sbx.sandbox_id).get_mcp_token() == token
        r = sbx.commands.run(f"curl -s -H 'Authorization: Bearer {token}' http://127.0.0.1:50005/mcp")
        assert json.loads(r.stdout) == {"servers": ["exa"]}
    finally:
        sbx.kill()


async def test_async_mcp_and_a_failing_gateway(gateway_template: str) -> None:
    sbx = await AsyncSandbox.create(gateway_template, mcp={"exa": {}}, timeout=120)
    try:
        token = await sbx.get_mcp_token()
        assert token == (await sbx.files.read("/etc/mcp-gateway/.token", user="root"))
    finally:
        await sbx.kill()
    before = {s.sandbox_id for s in Sandbox.list().next_items()}
    with pytest.raises(SandboxException, match="Failed to start MCP gateway: .*'broken' failed to start"):
        Sandbox.create(gateway_template, mcp={"broken": {}}, timeout=60)
    assert {s.sandbox_id for s in Sandbox.list().next_items()} == before
