"""Our SDK's ``Template`` / ``AsyncTemplate`` and the ``sandboxd template`` CLI against a real
sandboxd: a template built from ``base`` (files, envs, a start command serving HTTP, a ready
check), a sandbox created from it answering on its port the moment ``create`` returns, a
cached rebuild, tags, the CLI building an ``e2b.Dockerfile``, and refusals.

The server side (E2B's template API in sandboxd) may be missing from a build of sandboxd: then
``POST /v3/templates`` is a 404 and the server tests are skipped, saying so. The client-only
checks at the end always run.
"""

import asyncio
import json
import os
import subprocess
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

import e2b
from e2b import (
    AsyncTemplate,
    BuildException,
    BuildInfo,
    LogEntry,
    LogEntryEnd,
    LogEntryStart,
    Sandbox,
    Template,
    TemplateException,
    wait_for_port,
)

from conftest import REPO, Server


def _has_template_api(server: Server) -> bool:
    req = urllib.request.Request(
        f"{server.url}/v3/templates",
        data=b"{}",
        method="POST",
        headers={"X-API-KEY": server.api_key, "Content-Type": "application/json"},
    )
    try:
        urllib.request.urlopen(req, timeout=10)
    except urllib.error.HTTPError as e:
        return e.code != 404
    return True


@pytest.fixture(scope="module")
def server(sandboxd: Server) -> Server:
    if not _has_template_api(sandboxd):
        pytest.skip("this sandboxd has no template API (POST /v3/templates is a 404)")
    return sandboxd


@pytest.fixture(scope="module")
def context(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("tpl-ctx")
    (d / "site").mkdir()
    (d / "site" / "index.html").write_text("hello from a template\n")
    (d / "site" / "run.sh").write_text("#!/bin/sh\necho ran\n")
    (d / "site" / "debug.log").write_text("ignored\n")
    (d / ".dockerignore").write_text("*.log\n**/*.log\n")
    return d


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """A small OCI image (busybox) on a throwaway registry on a loopback port, for a
    Dockerfile's FROM (tests/compat/oci_registry.py; no Docker Hub from these hosts)."""
    import sys

    sys.path.insert(0, str(REPO / "tests" / "compat"))
    from oci_registry import Registry, build_image

    work = tmp_path_factory.mktemp("oci")
    reg = Registry(work / "registry")
    try:
        yield reg.push(build_image(work / "image"), "cli-test/busybox:v1")
    finally:
        reg.stop()


def _template(context: Path):
    return (
        Template(file_context_path=context)
        .from_template("base")
        .copy("site", "/home/user/site", mode=0o755)
        .set_envs({"GREETING": "hi there"})
        .run_cmd('echo "$GREETING" > /home/user/greeting')
        .set_start_cmd("cd /home/user/site && python3 -m http.server 8000", wait_for_port(8000))
    )


def test_build_create_and_cached_rebuild(server: Server, context: Path) -> None:
    name = f"py-tpl-{uuid.uuid4().hex[:8]}"
    logs = []
    info = Template.build(_template(context), name, cpu_count=1, memory_mb=512, on_build_logs=logs.append)
    try:
        assert isinstance(info, BuildInfo) and info.template_id and info.build_id
        assert info.name == name and info.alias == name
        assert isinstance(logs[0], LogEntryStart) and isinstance(logs[-1], LogEntryEnd)
        messages = [e.message for e in logs]
        assert f"Requesting build for template: {name}" in messages
        assert "Uploaded 'site'" in messages
        assert all(isinstance(e, LogEntry) and e.level in ("debug", "info", "warn", "error") for e in logs)
        assert Template.exists(name) and not Template.exists(f"{name}-missing")

        # The start command's server is up the moment create returns: templates are snapshots.
        with Sandbox.create(name) as sbx:
            r = sbx.commands.run("curl -s --max-time 5 http://127.0.0.1:8000/index.html")
            assert r.stdout == "hello from a template\n"
            assert sbx.files.read("/home/user/greeting") == "hi there\n"
            listing = sbx.commands.run("ls /home/user/site").stdout.split()
            assert "run.sh" in listing and "debug.log" not in listing

        # Same files, same steps: nothing is uploaded again and the build is cached.
        logs2 = []
        again = asyncio.run(AsyncTemplate.build(_template(context), name, on_build_logs=logs2.append))
        assert again.template_id == info.template_id and again.build_id != info.build_id
        messages2 = [e.message for e in logs2]
        assert "Skipping upload of 'site', already cached" in messages2
        # Every layer (3 steps and the start/ready finalize) comes from the cache.
        assert sum(m.startswith("CACHED [") for m in messages2) == 4, messages2

        # build_in_background + status polling, and tags.
        bg = Template.build_in_background(_template(context), f"{name}:v2")
        from conftest import wait_until

        status = wait_until(
            lambda: (s := Template.get_build_status(bg)).status.value in ("ready", "error") and s,
            120,
            "background build",
        )
        assert status.status.value == "ready", status.reason
        assert any(t.tag == "v2" for t in Template.get_tags(name))
        Template.assign_tags(f"{name}:v2", "stable")
        assert any(t.tag == "stable" for t in Template.get_tags(name))
        Template.remove_tags(name, "stable")
        assert not any(t.tag == "stable" for t in Template.get_tags(name))
    finally:
        subprocess.run(_cli(server, "delete", name), capture_output=True, text=True, timeout=60)
    assert not Template.exists(name)


def test_failed_step_is_a_build_exception(server: Server, context: Path) -> None:
    name = f"py-tpl-fail-{uuid.uuid4().hex[:8]}"
    t = Template(file_context_path=context).from_template("base").run_cmd("echo about to fail && exit 3")
    with pytest.raises(BuildException) as e:
        Template.build(t, name)
    assert str(e.value)
    assert not Template.exists(name)


def _cli(server: Server, *args: str) -> list:
    binary = os.environ.get("SANDBOXD_BIN") or str(REPO / "target/debug/sandboxd")
    return [binary, "template", *args, "--api-url", server.url, "--api-key", server.api_key]


def test_cli_builds_an_e2b_dockerfile(server: Server, context: Path, image: str) -> None:
    name = f"cli-tpl-{uuid.uuid4().hex[:8]}"
    (context / "e2b.Dockerfile").write_text(
        f"FROM {image}\n"
        "ENV GREETING=from-dockerfile\n"
        "COPY site /home/user/site\n"
        "RUN echo \"$GREETING\" > /home/user/greeting\n"
        "WORKDIR /home/user/site\n"
    )
    r = subprocess.run(
        _cli(server, "build", "--file", str(context / "e2b.Dockerfile"), "--name", name, "--memory-mb", "512"),
        capture_output=True, text=True, timeout=600, env={**os.environ, "RUST_BACKTRACE": "0"},
    )
    # The logs stream as plain lines (not a terminal here), the client's and the server's.
    assert "INFO  Requesting build for template: " + name in r.stderr, r.stderr
    assert "INFO  Uploaded 'site'" in r.stderr or "INFO  Skipping upload of 'site', already cached" in r.stderr, r.stderr
    assert r.returncode == 0, r.stderr
    template_id = r.stdout.strip()
    assert template_id and f"Built {name}" in r.stderr
    listed = subprocess.run(_cli(server, "list"), capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and name in listed.stdout and template_id in listed.stdout
    with Sandbox.create(name) as sbx:
        assert sbx.files.read("/home/user/greeting") == "from-dockerfile\n"
        # The image's own content and the Dockerfile's WORKDIR and ENV hold in the sandbox.
        r = sbx.commands.run("pwd; echo $GREETING; ls; cat /etc/os-release")
        assert r.stdout.split("\n")[:4] == ["/home/user/site", "from-dockerfile", "index.html", "run.sh"], r.stdout
        assert "sandboxd OCI test image (busybox)" in r.stdout, r.stdout
    d = subprocess.run(_cli(server, "delete", name), capture_output=True, text=True, timeout=60)
    assert d.returncode == 0, d.stderr


def test_cli_list_and_delete(server: Server, context: Path) -> None:
    name = f"cli-del-{uuid.uuid4().hex[:8]}"
    t = Template(file_context_path=context).from_template("base").run_cmd("echo hi > /home/user/hi")
    info = Template.build(t, name)
    listed = subprocess.run(_cli(server, "list"), capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if info.template_id in line)
    assert name in row and "ready" in row
    d = subprocess.run(_cli(server, "delete", name), capture_output=True, text=True, timeout=60)
    assert d.returncode == 0 and f"Deleted template {name}" in d.stderr, d.stderr
    assert not Template.exists(name)
    again = subprocess.run(_cli(server, "delete", name), capture_output=True, text=True, timeout=60)
    assert again.returncode != 0 and "not found" in again.stderr


# ---- client side only (no server needed) ---------------------------------------------------


def test_copy_outside_the_context_is_refused(tmp_path: Path) -> None:
    t = Template(file_context_path=tmp_path).from_template("base")
    for bad in ("../secret", "/etc/passwd", "a/../../b"):
        with pytest.raises(TemplateException):
            t.copy(bad, "/x")
    assert json.loads(Template.to_json(t))["steps"] == []


def test_dockerfile_refusals(tmp_path: Path) -> None:
    for bad in ("FROM a\nFROM b\n", "FROM a\nHEALTHCHECK CMD true\n", "FROM a\nCOPY --from=x a b\n"):
        with pytest.raises(e2b.DockerfileSyntaxError):
            Template(file_context_path=tmp_path).from_dockerfile(bad)


def test_unknown_options_are_refused(tmp_path: Path) -> None:
    t = Template(file_context_path=tmp_path).from_template("base")
    with pytest.raises(TypeError):
        Template.build(t, "x", nonsense=1)
    with pytest.raises(e2b.InvalidArgumentException):
        Template.build(t, "x", proxy="http://p")
    with pytest.raises(TemplateException, match="Name must be provided"):
        Template.build(t)


def test_default_build_logger_prints_levels_at_or_above_min(capsys) -> None:
    from datetime import datetime

    log = e2b.default_build_logger()
    log(LogEntryStart(timestamp=datetime.now(), message="Build started"))
    log(LogEntry(timestamp=datetime.now(), level="debug", message="hidden"))
    log(LogEntry(timestamp=datetime.now(), level="info", message="\x1b[31mshown\x1b[0m"))
    log(LogEntry(timestamp=datetime.now(), level="error", message="failed"))
    log(LogEntryEnd(timestamp=datetime.now(), message="Build finished"))
    out = capsys.readouterr().out
    assert "hidden" not in out and "Build started" not in out
    assert "INFO  shown" in out and "ERROR failed" in out and "\x1b[31m" not in out
    verbose = e2b.default_build_logger(min_level="debug")
    verbose(LogEntry(timestamp=datetime.now(), level="debug", message="now shown"))
    assert "DEBUG now shown" in capsys.readouterr().out
