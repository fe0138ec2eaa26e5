"""Issue 11, both halves together: the official SDKs' `Template().from_image(...)` built through
E2B's template API on an OCI image from a throwaway registry on a loopback port (plain and with
credentials), with steps and a start command, then `Sandbox.create(name)` restores a VM whose
server already answers. Real microVMs, no Docker daemon."""

import shutil

import pytest

from guest_net import request
from oci_registry import IMAGE_ENV, IMAGE_WORKDIR, LAYER1_ONLY, Registry, build_image
from official_js import run_js

USERS = {"e2b-user": "s3cret-pass"}


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    from conftest import Sandboxd, build_base_template

    build_base_template()
    server = Sandboxd(tmp_path_factory.mktemp("tpl-img"), env={"SANDBOXD_TEMPLATE_READY_TIMEOUT_SECS": "20"})
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    for tool in ("docker-registry", "skopeo", "umoci", "htpasswd"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} missing: run scripts/install-deps.sh")
    work = tmp_path_factory.mktemp("oci-build")
    open_reg = Registry(work / "registry")
    auth_reg = Registry(work / "registry-auth", users=USERS)
    try:
        layout = build_image(work / "image")
        yield {"ref": open_reg.push(layout, "sandboxd-build/busybox:v1"), "private": auth_reg.push(layout, "private/busybox:v1")}
    finally:
        open_reg.stop()
        auth_reg.stop()


def conn(server):
    return {"api_url": server.url, "api_key": server.key}


def test_image_template_with_steps_serves_on_create(srv, registry, tmp_path):
    from e2b import Sandbox, Template

    (tmp_path / "index.html").write_text("served from an OCI template\n")
    template = (
        Template(file_context_path=str(tmp_path))
        .from_image(registry["ref"])
        .copy("index.html", "/srv/www/index.html")
        .set_envs({"STAGE": "built"})
        .run_cmd("echo $FOO-$STAGE > /srv/www/env.txt")
        # busybox has no `ss` (wait_for_port's check): its own wget asks the server instead.
        .set_start_cmd("busybox httpd -f -p 8000 -h /srv/www", "busybox wget -q -O /dev/null http://127.0.0.1:8000/index.html")
    )
    logs = []
    info = Template.build(template, "oci-web", on_build_logs=logs.append, **conn(srv))
    assert info.alias == "oci-web"
    assert any("2 layers" in e.message or "layer" in e.message for e in logs), [e.message for e in logs]
    sbx = Sandbox.create("oci-web", timeout=120, **conn(srv), sandbox_url=srv.url, domain="localhost")
    try:
        # The start command's server was running in the snapshot: it answers at once.
        status, body, _ = request(srv.url, sbx.get_host(8000), "/index.html")
        assert (status, body) == (200, b"served from an OCI template\n")
        assert sbx.files.read("/srv/www/env.txt") == f"{IMAGE_ENV['FOO']}-built\n"
        # The image's own layers: layer 2's whiteout still hides layer 1's file; its WorkingDir holds.
        r = sbx.commands.run(f"test -e {LAYER1_ONLY} && echo present || echo gone; pwd; echo $STAGE")
        assert r.stdout.split() == ["gone", IMAGE_WORKDIR, "built"]
    finally:
        sbx.kill()
    # Unchanged: every step comes from the cache.
    logs.clear()
    Template.build(template, "oci-web", on_build_logs=logs.append, **conn(srv))
    assert sum("CACHED" in e.message for e in logs) >= 3, [e.message for e in logs]


def test_private_image_needs_its_credentials(srv, registry):
    from e2b import Template
    from e2b.exceptions import BuildException

    with pytest.raises(BuildException) as refused:
        Template.build(Template().from_image(registry["private"]).run_cmd("true"), "oci-private", **conn(srv))
    assert "refused anonymous access" in str(refused.value) and "pass registry credentials" in str(refused.value), str(refused.value)
    from e2b import Template as T

    t = T().from_image(registry["private"], username="e2b-user", password=USERS["e2b-user"]).run_cmd("echo ok > /tmp/ok")
    info = T.build(t, "oci-private", **conn(srv))
    assert info.alias == "oci-private"


def test_js_sdk_builds_from_an_image(srv, registry):
    out = run_js(
        f"""
        import {{ Template, Sandbox }} from 'e2b'
        const t = Template().fromImage({registry['ref']!r}).runCmd('echo js > /tmp/js.txt')
        await Template.build(t, 'oci-js')
        const sbx = await Sandbox.create('oci-js')
        console.log(JSON.stringify((await sbx.files.read('/tmp/js.txt')).trim()))
        await sbx.kill()
        """,
        srv,
    )
    assert out == "js"
