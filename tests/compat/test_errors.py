"""Issue 10, errors as E2B words them: what the official SDKs raise when a sandbox is killed
under a running command, when a command outlives its timeout, and reconnecting to a running
PTY. Real sandboxd, real microVMs.
"""

import threading
import time

import pytest
from e2b import Sandbox
from e2b.exceptions import SandboxNotRunningException, TimeoutException
from e2b.sandbox.commands.command_handle import PtySize

from official_js import run_js


def test_command_of_a_killed_sandbox_ends_with_sandbox_not_running(base_template):
    sbx = Sandbox.create(base_template, timeout=120)
    handle = sbx.commands.run("echo started; sleep 120", background=True, timeout=0)
    killed_at = {}

    def kill():
        # Kill only once the command is really running (its first output arrived).
        started.wait(60)
        killed_at["t"] = time.monotonic()
        assert Sandbox.kill(sbx.sandbox_id)

    started = threading.Event()
    killer = threading.Thread(target=kill)
    killer.start()
    with pytest.raises(SandboxNotRunningException) as err:
        handle.wait(on_stdout=lambda _: started.set())
    killer.join()
    assert "killed or reached its end of life" in str(err.value)
    # The stream ended with the kill, not at some later timeout.
    assert time.monotonic() - killed_at["t"] < 20
    assert not sbx.is_running()


def test_command_timeout_raises_the_sdk_timeout_quickly(sandbox):
    t0 = time.monotonic()
    with pytest.raises(TimeoutException):
        sandbox.commands.run("sleep 60", timeout=2)
    assert time.monotonic() - t0 < 15
    # The sandbox is fine afterwards.
    assert sandbox.commands.run("echo ok").stdout.strip() == "ok"


def test_pty_connect_to_a_running_pty(sandbox):
    handle = sandbox.pty.create(PtySize(rows=24, cols=80), timeout=0)
    sandbox.pty.send_stdin(handle.pid, b"export MARK=abc123\n")
    handle.disconnect()

    again = sandbox.pty.connect(handle.pid, timeout=60)
    sandbox.pty.send_stdin(handle.pid, b"echo again-$MARK; exit\n")
    out = bytearray()
    result = again.wait(on_pty=lambda data: out.extend(data))
    assert b"again-abc123" in bytes(out)
    assert result.exit_code == 0


def test_js_sdk_error_of_a_killed_sandbox(sandbox):
    """The JS SDK words it "killed or reached its end of life" after its health probe."""
    out = run_js(f"""
import {{ Sandbox }} from 'e2b'
const sbx = await Sandbox.connect({sandbox.sandbox_id!r})
let started
const ready = new Promise((r) => (started = r))
const handle = await sbx.commands.run('echo started; sleep 120', {{ background: true, timeoutMs: 0, onStdout: () => started() }})
await ready
await Sandbox.kill(sbx.sandboxId)
try {{
  await handle.wait()
  console.log(JSON.stringify({{ name: 'none' }}))
}} catch (e) {{
  console.log(JSON.stringify({{ name: e.name, message: e.message }}))
}}
""")
    assert out["name"] in ("TimeoutError", "SandboxNotRunningError"), out
    assert "killed" in out["message"], out


@pytest.mark.parametrize("option, value, words", [
    ("volume_mounts", {"/data": "no-such-volume"}, 'volume "no-such-volume" not found'),
])
def test_options_sandboxd_cannot_honour_are_refused_not_ignored(base_template, option, value, words):
    """Options sandboxd cannot honour are refused with a 400 naming why, never dropped."""
    from e2b.exceptions import SandboxException

    before = len(Sandbox.list().next_items())
    with pytest.raises(SandboxException) as err:
        Sandbox.create(base_template, timeout=60, **{option: value})
    assert "400" in str(err.value) and words in str(err.value)
    assert len(Sandbox.list().next_items()) == before  # nothing was started
