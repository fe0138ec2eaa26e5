"""Issue 2 acceptance: sandbox lifecycle, commands and files through the official SDK."""

import datetime
import uuid

import pytest
from e2b import Sandbox
from e2b.exceptions import NotFoundException
from e2b.sandbox.commands.command_handle import CommandExitException

from conftest import wait_until


def test_create_and_echo(sandbox):
    result = sandbox.commands.run("echo hi")
    assert result.stdout == "hi\n"
    assert result.exit_code == 0


def test_failing_command_raises_with_its_exit_code(sandbox):
    with pytest.raises(CommandExitException) as e:
        sandbox.commands.run("echo oops >&2; exit 3")
    assert e.value.exit_code == 3
    assert "oops" in e.value.stderr


def test_background_command_and_kill(sandbox):
    handle = sandbox.commands.run("sleep 600", background=True)
    assert handle.pid > 0
    wait_until(lambda: any(p.pid == handle.pid for p in sandbox.commands.list()), 30, "the process to be listed")
    assert sandbox.commands.kill(handle.pid) is True
    wait_until(lambda: all(p.pid != handle.pid for p in sandbox.commands.list()), 30, "the process to go away")


def test_files(sandbox):
    sandbox.files.make_dir("work")
    sandbox.files.write("work/a.txt", "hello files")
    assert sandbox.files.read("work/a.txt") == "hello files"
    assert sandbox.files.exists("work/a.txt")
    names = [e.name for e in sandbox.files.list("work")]
    assert "a.txt" in names
    sandbox.files.rename("work/a.txt", "work/b.txt")
    assert not sandbox.files.exists("work/a.txt")
    assert sandbox.files.read("work/b.txt") == "hello files"
    assert sandbox.commands.run("cat work/b.txt").stdout == "hello files"
    sandbox.files.remove("work/b.txt")
    assert not sandbox.files.exists("work/b.txt")


def test_get_info_and_set_timeout(sandbox):
    info = sandbox.get_info()
    assert info.sandbox_id == sandbox.sandbox_id
    assert info.state.value == "running"
    assert info.template_id == "base"
    before = info.end_at
    sandbox.set_timeout(1200)
    after = sandbox.get_info().end_at
    assert after > before
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((after - now).total_seconds() - 1200) < 30


def test_list_pages_with_limit_one(base_template):
    tag = uuid.uuid4().hex
    created = [Sandbox.create(base_template, timeout=300, metadata={"suite": tag}) for _ in range(3)]
    try:
        from e2b.sandbox.sandbox_api import SandboxQuery

        paginator = Sandbox.list(query=SandboxQuery(metadata={"suite": tag}), limit=1)
        seen = []
        pages = 0
        while paginator.has_next:
            items = paginator.next_items()
            pages += 1
            assert len(items) <= 1
            seen.extend(i.sandbox_id for i in items)
            assert pages <= 10, "paging does not end"
        assert sorted(seen) == sorted(s.sandbox_id for s in created)
        assert paginator.next_token is None  # the header is absent on the last page
    finally:
        for s in created:
            s.kill()


def test_kill_twice(base_template):
    sbx = Sandbox.create(base_template, timeout=300)
    assert sbx.kill() is True
    assert sbx.kill() is False
    with pytest.raises(NotFoundException):
        Sandbox.get_info(sbx.sandbox_id)


def test_sandbox_is_killed_at_its_timeout(base_template):
    sbx = Sandbox.create(base_template, timeout=5)
    assert sbx.is_running()

    def gone():
        try:
            Sandbox.get_info(sbx.sandbox_id)
            return False
        except NotFoundException:
            return True

    wait_until(gone, 60, "the sandbox to be killed at its timeout", interval_s=0.5)
    assert sbx.is_running() is False


@pytest.mark.parametrize("http_version", ["1.1", "2"])
def test_both_http_versions(base_template, monkeypatch, http_version):
    monkeypatch.setenv("E2B_HTTP_VERSION", http_version)
    sbx = Sandbox.create(base_template, timeout=120)
    try:
        assert sbx.commands.run("echo hi").stdout == "hi\n"
        assert sbx.get_info().sandbox_id == sbx.sandbox_id
    finally:
        sbx.kill()


def test_envd_is_reachable_by_host_name(sandbox, sandboxd):
    """`<port>-<sandboxID>.<domain>` in Host routes to envd, as behind a wildcard-DNS proxy."""
    import urllib.request

    req = urllib.request.Request(f"{sandboxd}/health", headers={"Host": f"49983-{sandbox.sandbox_id}.sandboxes.local"})
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status in (200, 204)
