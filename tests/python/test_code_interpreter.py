"""E2B's code interpreter (PyPI `e2b-code-interpreter`, installed with `--no-deps` over **our**
`e2b`) against a real sandboxd: `from e2b_code_interpreter import Sandbox` imports and runs code
in the `code-interpreter-v1` template (templates/code-interpreter, built here with our Template
builder)."""

import asyncio
import importlib.util
import os

import pytest

from conftest import REPO, Server


@pytest.fixture(scope="module")
def template(sandboxd: Server) -> str:
    if importlib.util.find_spec("e2b_code_interpreter") is None:
        if os.environ.get("CI"):
            pytest.fail("e2b-code-interpreter is not installed (scripts/test.sh installs it with --no-deps)")
        pytest.skip("e2b-code-interpreter is not installed: pip install --no-deps e2b-code-interpreter==2.11.5 httpx attrs")
    spec = importlib.util.spec_from_file_location("code_interpreter_template", REPO / "templates" / "code-interpreter" / "build.py")
    ci_template = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ci_template)

    ci_template.build()
    return ci_template.NAME


def test_the_package_runs_on_our_sdk(template: str):
    import e2b
    from e2b_code_interpreter import Sandbox

    # Ours (the Rust core's native module), not the official package.
    assert hasattr(e2b, "_native") and issubclass(Sandbox, e2b.Sandbox)
    sbx = Sandbox.create(timeout=120)
    try:
        assert isinstance(sbx, e2b.Sandbox)
        lines = []
        ex = sbx.run_code("print('hi')\n6 * 7", on_stdout=lambda m: lines.append(m.line))
        assert (ex.text, ex.logs.stdout, lines) == ("42", ["hi\n"], ["hi\n"])
        assert sbx.run_code("1/0").error.name == "ZeroDivisionError"
        ctx = sbx.create_code_context(cwd="/tmp")
        assert sbx.run_code("import os; os.getcwd()", context=ctx).text == "'/tmp'"
        # The sandbox is one of ours in every other respect.
        assert sbx.commands.run("echo ok").stdout == "ok\n"
    finally:
        sbx.kill()


def test_async_on_our_sdk(template: str):
    from e2b_code_interpreter import AsyncSandbox

    async def main():
        sbx = await AsyncSandbox.create(timeout=120)
        try:
            assert (await sbx.run_code("sum(range(5))")).text == "10"
        finally:
            await sbx.kill()

    asyncio.run(main())
