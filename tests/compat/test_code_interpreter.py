"""E2B's code interpreter (PyPI `e2b-code-interpreter` on the official `e2b`) against sandboxd:
the `code-interpreter-v1` template (templates/code-interpreter, built here with the official
Template builder) serves its API on port 49999 through sandboxd's port proxy. Checks run_code
(results, stdout/stderr, errors, env vars, callbacks, state kept between runs), contexts, and an
execution timeout that interrupts the code and leaves the context usable."""

import asyncio
import importlib.util
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_template_builder(root: Path):
    """templates/code-interpreter/build.py, under a name of its own (not `build`)."""
    spec = importlib.util.spec_from_file_location("code_interpreter_template", root / "templates" / "code-interpreter" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    from conftest import Sandboxd, build_base_template

    if importlib.util.find_spec("e2b_code_interpreter") is None:
        if os.environ.get("CI"):
            pytest.fail("e2b-code-interpreter is not installed in the compat venv (tests/compat/requirements.txt)")
        pytest.skip("e2b-code-interpreter is not installed")
    build_base_template()
    server = Sandboxd(tmp_path_factory.mktemp("code-interpreter"))
    server.start()
    ci_template = load_template_builder(ROOT)

    ci_template.build(api_url=server.url, api_key=server.key)
    yield server
    server.stop()


def opts(server):
    return {"api_url": server.url, "sandbox_url": server.url, "api_key": server.key}


def test_run_code(srv):
    from e2b_code_interpreter import Sandbox

    sbx = Sandbox.create(timeout=120, **opts(srv))
    try:
        out, err = [], []
        ex = sbx.run_code("import os, sys\nprint('hello')\nprint('oops', file=sys.stderr)\nx = 41\nx + 1",
                          on_stdout=lambda m: out.append(m.line), on_stderr=lambda m: err.append(m.line))
        assert ex.error is None, ex.error
        assert ex.text == "42" and ex.results[0].is_main_result
        assert ex.logs.stdout == ["hello\n"] and ex.logs.stderr == ["oops\n"]
        assert out == ["hello\n"] and err == ["oops\n"]
        # State stays between runs; env vars apply to one run.
        assert sbx.run_code("x * 2").text == "82"
        assert sbx.run_code("os.environ.get('GREETING')", envs={"GREETING": "hi"}).text == "'hi'"
        assert sbx.run_code("os.environ.get('GREETING')").text is None
        # Errors, with the user's traceback only.
        ex = sbx.run_code("def f():\n    return 1 / 0\nf()")
        assert ex.error.name == "ZeroDivisionError" and ex.error.value == "division by zero"
        assert 'File "<cell>", line 2, in f' in ex.error.traceback and "kernel.py" not in ex.error.traceback
        assert sbx.run_code("x = (").error.name == "SyntaxError"
        # Shell lines, as in Jupyter.
        assert sbx.run_code("!echo from-shell").logs.stdout == ["from-shell\n"]
        # Files written by code are the sandbox's files.
        sbx.run_code("open('/home/user/data.txt', 'w').write('written by code')")
        assert sbx.files.read("/home/user/data.txt") == "written by code"
    finally:
        sbx.kill()


def test_contexts_and_languages(srv):
    from e2b_code_interpreter import Sandbox
    from e2b.exceptions import SandboxException

    sbx = Sandbox.create(timeout=120, **opts(srv))
    try:
        ctx = sbx.create_code_context(cwd="/tmp")
        assert ctx.cwd == "/tmp" and ctx.language == "python"
        sbx.run_code("y = 'only here'", context=ctx)
        assert sbx.run_code("import os; os.getcwd()", context=ctx).text == "'/tmp'"
        assert sbx.run_code("y", context=ctx).text == "'only here'"
        assert sbx.run_code("y").error.name == "NameError"  # the default context is another one
        assert ctx.id in [c.id for c in sbx.list_code_contexts()]
        sbx.restart_code_context(ctx)
        assert sbx.run_code("y", context=ctx).error.name == "NameError"
        sbx.remove_code_context(ctx)
        assert ctx.id not in [c.id for c in sbx.list_code_contexts()]
        with pytest.raises(SandboxException, match="not supported by this code interpreter"):
            sbx.run_code("1", language="r")
    finally:
        sbx.kill()


def test_timeout_interrupts_and_the_context_stays_usable(srv):
    from e2b_code_interpreter import Sandbox
    from e2b.exceptions import TimeoutException

    sbx = Sandbox.create(timeout=120, **opts(srv))
    try:
        sbx.run_code("n = 1")
        with pytest.raises(TimeoutException):
            sbx.run_code("import time\nwhile True: time.sleep(0.1)", timeout=3)
        # The loop was interrupted (KeyboardInterrupt), not left running: the next run answers.
        assert sbx.run_code("n + 1", timeout=30).text == "2"
    finally:
        sbx.kill()


def test_async_sandbox(srv):
    from e2b_code_interpreter import AsyncSandbox

    async def main():
        sbx = await AsyncSandbox.create(timeout=120, **opts(srv))
        try:
            ex = await sbx.run_code("sum(range(10))")
            assert ex.text == "45"
        finally:
            await sbx.kill()

    asyncio.run(main())


def test_the_official_js_package(srv):
    from official_js import run_js, sdk_dir

    if not (sdk_dir() / "@e2b" / "code-interpreter" / "package.json").exists():
        if os.environ.get("CI"):
            pytest.fail("@e2b/code-interpreter is not installed next to the official JS SDK (scripts/test.sh)")
        pytest.skip("no @e2b/code-interpreter next to the official JS SDK")
    out = run_js("""
import { Sandbox } from '@e2b/code-interpreter'
const sbx = await Sandbox.create({ timeoutMs: 120000 })
const lines = []
const ex = await sbx.runCode("print('from js')\\n7 * 6", { onStdout: (m) => lines.push(m.line) })
const err = (await sbx.runCode('1/0')).error
const ctx = await sbx.createCodeContext({ cwd: '/tmp' })
const cwd = (await sbx.runCode('import os; os.getcwd()', { context: ctx })).text
await sbx.kill()
console.log(JSON.stringify({ text: ex.text, stdout: ex.logs.stdout, lines, err: err.name, cwd }))
""", server=srv)
    assert out == {"text": "42", "stdout": ["from js\n"], "lines": ["from js\n"], "err": "ZeroDivisionError", "cwd": "'/tmp'"}
