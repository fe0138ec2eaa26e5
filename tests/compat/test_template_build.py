"""Custom templates through E2B's template API, driven by the official SDKs' `Template` builder
(unchanged) against real build VMs: files, envs, user, workdir, a real `pip install` through
the host's CA bundle, a start command whose port answers the moment `Sandbox.create` returns,
the layer cache, tags, `Template.exists`, delete, failing steps, a ready command that never
succeeds, bad input on the wire, and a sandboxd killed mid-build."""

import json
import time
import urllib.error
import urllib.request

import pytest

from conftest import wait_until
from guest_net import request
from official_js import run_js

READY_TIMEOUT_S = 6


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    """One server for the module, with a short ready-command timeout."""
    from conftest import Sandboxd, build_base_template

    build_base_template()
    server = Sandboxd(tmp_path_factory.mktemp("tpl"), env={"SANDBOXD_TEMPLATE_READY_TIMEOUT_SECS": str(READY_TIMEOUT_S)})
    server.start()
    yield server
    server.stop()


def opts(server):
    return {"api_url": server.url, "api_key": server.key}


def sbx_opts(server):
    return {**opts(server), "sandbox_url": server.url, "domain": "localhost"}


def api(server, method, path, body=None, headers=None):
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(server.url + path, data=data, method=method,
                                 headers={"X-API-KEY": server.key, "Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, json.loads(raw) if raw else None


def test_build_from_base_runs_steps_and_serves_on_create_then_rebuilds_from_cache(srv, tmp_path):
    from e2b import Sandbox, Template, wait_for_port

    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "hello.txt").write_text("hi from the context\n")
    (tmp_path / "run.sh").write_text("#!/bin/sh\necho run\n")
    template = (
        Template(file_context_path=str(tmp_path))
        .from_template("base")
        .copy("app", "/home/user/app")
        .copy("run.sh", "/usr/local/bin/run.sh", mode=0o755, user="root")
        .set_envs({"GREETING": "hello"})
        .pip_install("tabulate")
        .set_user("user")
        .set_workdir("/home/user/app")
        .run_cmd("echo $GREETING > greeting.txt && whoami > who.txt")
        .set_start_cmd("python3 -m http.server 8000", wait_for_port(8000))
    )
    logs = []
    t0 = time.monotonic()
    info = Template.build(template, "tpl-web", on_build_logs=logs.append, **opts(srv))
    cold = time.monotonic() - t0
    messages = [e.message for e in logs]
    assert info.alias == "tpl-web" and info.tags == ["default"]
    assert any(m.startswith("[4/7] RUN pip install") for m in messages), messages
    assert any("Successfully installed tabulate" in m for m in messages), messages
    assert all(e.level in ("debug", "info", "warn", "error") for e in logs)

    t1 = time.monotonic()
    sbx = Sandbox.create("tpl-web", timeout=120, **sbx_opts(srv))
    created = time.monotonic() - t1
    try:
        # The start command was snapshotted running: its port answers at once, no waiting.
        status, body, _ = request(srv.url, sbx.get_host(8000), "/")
        assert status == 200 and b"hello.txt" in body, body[:300]
        t2 = time.monotonic()
        r = sbx.commands.run("whoami; pwd; echo $GREETING; cat who.txt greeting.txt; stat -c '%a %U' /usr/local/bin/run.sh; "
                             "stat -c '%U' hello.txt; python3 -c 'import tabulate; print(\"tabulate\", tabulate.__version__)'; "
                             "test ! -e /etc/sandboxd-build && echo clean")
        first_cmd = time.monotonic() - t2
        lines = r.stdout.split("\n")
        assert lines[:7] == ["user", "/home/user/app", "hello", "user", "hello", "755 root", "user"], r.stdout
        assert lines[7].startswith("tabulate ") and lines[8] == "clean", r.stdout
    finally:
        sbx.kill()

    logs2 = []
    t3 = time.monotonic()
    Template.build(template, "tpl-web", on_build_logs=logs2.append, **opts(srv))
    cached = time.monotonic() - t3
    steps = [e.message for e in logs2 if "/7]" in e.message or "[finalize]" in e.message]
    assert len(steps) == 8 and all(m.startswith("CACHED ") for m in steps), steps
    assert cached < cold / 3, (cached, cold)
    assert Template.exists("tpl-web", **opts(srv)) and not Template.exists("tpl-nope", **opts(srv))
    print(f"\nbuild cold {cold:.1f} s, fully cached {cached:.2f} s; create {created:.2f} s, first command {first_cmd:.2f} s")

    # skip_cache rebuilds every step.
    logs3 = []
    Template.build(template, "tpl-web", skip_cache=True, on_build_logs=logs3.append, **opts(srv))
    assert not any(e.message.startswith("CACHED") for e in logs3)
    assert any(e.message.startswith("[1/7] COPY app") for e in logs3)


def test_tags_list_get_and_delete(srv):
    from e2b import Sandbox, Template
    from e2b.exceptions import NotFoundException, SandboxException

    template = Template().from_template("base").run_cmd("echo v1 > /tmp/v")
    info = Template.build_in_background(template, "tpl-tags:v1", **opts(srv))
    assert info.tags == ["v1"]
    done = wait_until(lambda: (st := Template.get_build_status(info, **opts(srv))).status.value in ("ready", "error") and st,
                      120, "the background build finishes")
    assert done.status.value == "ready", done.reason
    assigned = Template.assign_tags("tpl-tags:v1", "stable", **opts(srv))
    assert assigned.tags == ["stable"] and assigned.build_id == info.build_id
    tags = sorted(t.tag for t in Template.get_tags("tpl-tags", **opts(srv)))
    assert tags == ["stable", "v1"]
    sbx = Sandbox.create("tpl-tags:stable", timeout=60, **sbx_opts(srv))
    try:
        assert sbx.commands.run("cat /tmp/v").stdout.strip() == "v1"
    finally:
        sbx.kill()
    with pytest.raises((NotFoundException, SandboxException)):
        Sandbox.create("tpl-tags:nope", **sbx_opts(srv))
    Template.remove_tags("tpl-tags", "stable", **opts(srv))
    assert [t.tag for t in Template.get_tags("tpl-tags", **opts(srv))] == ["v1"]

    status, listed = api(srv, "GET", "/templates")
    assert status == 200 and any(t["aliases"] == ["tpl-tags"] and t["buildStatus"] == "ready" for t in listed)
    status, got = api(srv, "GET", "/templates/tpl-tags")
    assert status == 200 and got["templateID"] == info.template_id and got["builds"][0]["status"] == "ready"

    assert api(srv, "DELETE", "/templates/tpl-tags")[0] == 204
    assert not Template.exists("tpl-tags", **opts(srv))
    assert api(srv, "GET", f"/templates/{info.template_id}")[0] == 404
    with pytest.raises((NotFoundException, SandboxException)):
        Sandbox.create("tpl-tags:v1", **sbx_opts(srv))


def test_failing_step_and_never_ready_fail_the_build_and_leave_nothing(srv):
    from e2b import Template, wait_for_file
    from e2b.exceptions import BuildException

    failing = Template().from_template("base").run_cmd("echo boom-output; echo on-stderr >&2; exit 3")
    with pytest.raises(BuildException) as e:
        Template.build(failing, "tpl-fail", **opts(srv))
    assert "boom-output" in str(e.value) and "on-stderr" in str(e.value) and "exit code 3" in str(e.value)
    assert not Template.exists("tpl-fail", **opts(srv))

    with pytest.raises(BuildException) as e:
        Template.build(Template().from_template("base"), "tpl-disk", min_free_disk_mb=10_000_000, **opts(srv))
    assert "minFreeDiskMb" in str(e.value)

    crashing = Template().from_template("base").set_start_cmd("echo crashing-now; exit 7", wait_for_file("/tmp/never"))
    logs = []
    with pytest.raises(BuildException) as e:
        Template.build(crashing, "tpl-crashing", on_build_logs=logs.append, **opts(srv))
    assert "exited with code 7" in str(e.value)
    assert any(m.message == "[start] crashing-now" for m in logs)

    never = Template().from_template("base").set_start_cmd("sleep 600", wait_for_file("/tmp/never"))
    t0 = time.monotonic()
    with pytest.raises(BuildException) as e:
        Template.build(never, "tpl-never", **opts(srv))
    assert "did not succeed within" in str(e.value)
    assert time.monotonic() - t0 < READY_TIMEOUT_S + 60
    assert not Template.exists("tpl-never", **opts(srv))
    status, listed = api(srv, "GET", "/templates")
    assert status == 200 and not any(a in ("tpl-fail", "tpl-never") for t in listed for a in t["aliases"])


def test_bad_input_on_the_wire(srv):
    assert api(srv, "POST", "/v3/templates", {})[0] == 400
    assert api(srv, "POST", "/v3/templates", {"name": "Bad Name"})[0] == 400
    assert api(srv, "POST", "/v3/templates", {"name": "base"})[0] == 400
    assert api(srv, "POST", "/v3/templates", {"name": "tpl-bad", "cpuCount": 0})[0] == 400
    assert api(srv, "POST", "/v3/templates", {"name": "tpl-bad", "memoryMB": 101})[0] == 400
    assert api(srv, "POST", "/v3/templates", b"{not json")[0] == 400

    def requested():
        status, r = api(srv, "POST", "/v3/templates", {"name": "tpl-bad"})
        assert status == 202, r
        return r["templateID"], r["buildID"]

    tid, bid = requested()
    status, link = api(srv, "GET", f"/templates/{tid}/files/{'ab' * 32}")
    assert status == 201 and link["present"] is False and link["url"].startswith(srv.url)
    # The upload URL is signed: another hash's signature does not fit.
    bad_url = link["url"].replace("ab" * 32, "cd" * 32)
    put = urllib.request.Request(bad_url, data=b"x", method="PUT")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(put, timeout=10)
    assert e.value.code == 403
    # Not a tar archive: refused, nothing stored.
    put = urllib.request.Request(link["url"], data=b"not a tar archive", method="PUT")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(put, timeout=10)
    assert e.value.code == 400
    assert api(srv, "GET", f"/templates/{tid}/files/{'ab' * 32}")[1]["present"] is False

    never_uploaded = {"fromTemplate": "base",
                      "steps": [{"type": "COPY", "args": ["app", "/app"], "filesHash": "ef" * 32}]}
    status, err = api(srv, "POST", f"/v2/templates/{tid}/builds/{bid}", never_uploaded)
    assert status == 400 and "never uploaded" in err["message"]
    # That build is over; the template it was the first of is gone.
    assert api(srv, "GET", f"/templates/{tid}/builds/{bid}/status")[1]["status"] == "error"

    tid, bid = requested()
    outside = {"fromTemplate": "base", "steps": [{"type": "COPY", "args": ["../etc", "/x"], "filesHash": "ab" * 32}]}
    status, err = api(srv, "POST", f"/v2/templates/{tid}/builds/{bid}", outside)
    assert status == 400 and "outside the build context" in err["message"]

    tid, bid = requested()
    assert api(srv, "POST", f"/v2/templates/{tid}/builds/{bid}", {"fromTemplate": "base", "steps": [{"type": "FROB"}]})[0] == 400
    tid, bid = requested()
    assert api(srv, "POST", f"/v2/templates/{tid}/builds/{bid}", {"steps": []})[0] == 400
    assert api(srv, "POST", f"/v2/templates/{tid}/builds/nope", {"fromTemplate": "base"})[0] == 404
    assert api(srv, "GET", f"/templates/{tid}/builds/nope/status")[0] == 404
    assert api(srv, "GET", "/templates/aliases/tpl-missing")[0] == 404

    # An unknown base is the build's error, with a clear message.
    tid, bid = requested()
    status, _ = api(srv, "POST", f"/v2/templates/{tid}/builds/{bid}", {"fromTemplate": "no-such-template"})
    assert status == 202
    assert api(srv, "POST", f"/v2/templates/{tid}/builds/{bid}", {"fromTemplate": "base"})[0] == 400
    done = wait_until(lambda: (s := api(srv, "GET", f"/templates/{tid}/builds/{bid}/status")[1])["status"] == "error" and s,
                      60, "the build fails")
    assert "no-such-template" in done["reason"]["message"] and done["reason"]["step"] == "base"
    assert any(e["level"] == "error" for e in done["logEntries"])
    status, logs = api(srv, "GET", f"/templates/{tid}/builds/{bid}/logs?level=error")
    assert status == 200 and logs["logs"] and all(e["level"] == "error" for e in logs["logs"])
    assert api(srv, "GET", "/templates/aliases/tpl-bad")[0] == 404


def test_js_sdk_builds_and_creates(srv, tmp_path):
    (tmp_path / "data.txt").write_text("from the js context\n")
    out = run_js("""
import { Template, Sandbox } from 'e2b'
const t = Template({ fileContextPath: process.env.CTX }).fromTemplate('base').setEnvs({ FROM_JS: 'yes' })
  .copy('data.txt', '/opt/data/', { mode: 0o640 }).runCmd('echo js > /tmp/js.txt', { user: 'root' })
const logs = []
const info = await Template.build(t, 'tpl-js', { onBuildLogs: (e) => logs.push(e.message) })
const sbx = await Sandbox.create('tpl-js')
const r = await sbx.commands.run("cat /tmp/js.txt /opt/data/data.txt; echo $FROM_JS; stat -c '%a %U' /opt/data/data.txt")
await sbx.kill()
console.log(JSON.stringify({ alias: info.alias, out: r.stdout, exists: await Template.exists('tpl-js'),
  steps: logs.filter((m) => m.includes('/3]')) }))
""", server=srv, env={"CTX": str(tmp_path)})
    assert out["alias"] == "tpl-js" and out["exists"] is True
    assert out["out"] == "js\nfrom the js context\nyes\n640 user\n", out
    assert out["steps"] == ["[1/3] ENV FROM_JS yes", "[2/3] COPY data.txt /opt/data/", "[3/3] RUN echo js > /tmp/js.txt"], out


def test_sandboxd_killed_mid_build_reports_the_build_failed(make_sandboxd):
    from conftest import build_base_template

    from e2b import Sandbox, Template

    build_base_template()
    server = make_sandboxd()
    Template.build(Template().from_template("base").run_cmd("echo kept > /tmp/k"), "tpl-keep", **opts(server))
    status, r = api(server, "POST", "/v3/templates", {"name": "tpl-crash"})
    assert status == 202
    tid, bid = r["templateID"], r["buildID"]
    start = {"fromTemplate": "base", "steps": [{"type": "RUN", "args": ["echo started; sleep 600"]}]}
    assert api(server, "POST", f"/v2/templates/{tid}/builds/{bid}", start)[0] == 202

    def running():
        s = api(server, "GET", f"/templates/{tid}/builds/{bid}/status")[1]
        return any(e["message"] == "started" for e in s["logEntries"])

    wait_until(running, 120, "the build step runs")
    # The build VM is no sandbox.
    assert api(server, "GET", "/v2/sandboxes")[1] == []
    server.kill9()
    server.start()
    s = api(server, "GET", f"/templates/{tid}/builds/{bid}/status")[1]
    assert s["status"] == "error" and "interrupted" in s["reason"]["message"]
    assert api(server, "GET", "/templates/aliases/tpl-crash")[0] == 404
    assert [t["aliases"] for t in api(server, "GET", "/templates")[1]] == [["tpl-keep"]]
    # The build VM did not survive the restart either: nothing runs.
    assert not list((server.data / "store" / "run").iterdir())
    # A ready template did.
    sbx = Sandbox.create("tpl-keep", timeout=60, **sbx_opts(server))
    try:
        assert sbx.commands.run("cat /tmp/k").stdout == "kept\n"
    finally:
        sbx.kill()


@pytest.mark.slow
def test_apt_and_npm_steps_reach_their_registries(srv):
    from e2b import Sandbox, Template

    template = Template().from_template("base").apt_install(["tree"]).npm_install(["is-number"])
    Template.build(template, "tpl-pkgs", **opts(srv))
    sbx = Sandbox.create("tpl-pkgs", timeout=60, **sbx_opts(srv))
    try:
        r = sbx.commands.run("tree --version && test -f /home/user/node_modules/is-number/package.json && echo npm-ok")
        assert "tree v" in r.stdout and "npm-ok" in r.stdout, r.stdout
    finally:
        sbx.kill()


def test_from_built_template_inherits_its_state_and_takes_another_shape(srv):
    from e2b import Sandbox, Template

    parent = Template().from_template("base").set_envs({"PARENT_VAR": "1"}).set_user("root").set_workdir("/srv")
    Template.build(parent, "tpl-parent", **opts(srv))
    child = Template().from_template("tpl-parent").run_cmd("echo $PARENT_VAR-$(whoami)-$(pwd) > /tmp/state")
    logs = []
    Template.build(child, "tpl-child", cpu_count=2, memory_mb=768, on_build_logs=logs.append, **opts(srv))
    assert any("cold-boots" in e.message for e in logs)
    sbx = Sandbox.create("tpl-child", timeout=60, **sbx_opts(srv))
    try:
        assert sbx.get_info().cpu_count == 2 and sbx.get_info().memory_mb == 768
        r = sbx.commands.run("cat /tmp/state; nproc; whoami; pwd; echo $PARENT_VAR")
        assert r.stdout.split() == ["1-root-/srv", "2", "root", "/srv", "1"], r.stdout
    finally:
        sbx.kill()
