"""Issue 10, the default template looks like E2B's `base`: the tools agents and the official
SDK's `git` helpers assume are there, for the default `user` and for root. Real microVM.
"""

import pytest

TOOLS = {
    "python": "python --version",
    "python3": "python3 --version",
    "pip": "pip --version",
    "git": "git --version",
    "curl": "curl --version",
    "node": "node -e 'console.log(6 * 7)'",
    "npm": "npm --version",
    "sudo": "sudo -n true && echo sudo-ok",
}


@pytest.mark.parametrize("user", ["user", "root"])
def test_tools_of_e2b_base_are_there(sandbox, user):
    for tool, cmd in TOOLS.items():
        r = sandbox.commands.run(cmd, user=user)
        assert r.exit_code == 0, (tool, r.stderr)
    assert sandbox.commands.run("node -e 'console.log(6 * 7)'").stdout.strip() == "42"
    assert sandbox.commands.run("python -c 'import sys; print(sys.version_info[0])'").stdout.strip() == "3"


def test_user_has_a_home_and_sudo(sandbox):
    r = sandbox.commands.run('echo "$HOME $(whoami) $(pwd)"; sudo -n whoami')
    assert r.stdout.split() == ["/home/user", "user", "/home/user", "root"]


def test_login_shells_keep_debian_paths_without_running_id(sandbox):
    """Every command is a `bash -l`; the template's /etc/profile takes the UID from bash
    (`${EUID:-$(id -u)}`) instead of running `id` in each, and still gives root the sbin dirs."""
    assert "/usr/sbin" in sandbox.commands.run("echo $PATH", user="root").stdout.split(":")
    assert "/usr/sbin" not in sandbox.commands.run("echo $PATH", user="user").stdout.strip().split(":")
    trace = sandbox.commands.run("bash -lx -c true 2>&1", user="user").stdout
    assert "/home/user/.bashrc" in trace, trace  # the trace did follow the profile
    assert "id -u" not in trace, trace
    sh = sandbox.commands.run("sh -lc 'echo $PATH'", user="root").stdout  # dash: no EUID, runs id
    assert "/usr/sbin" in sh.strip().split(":"), sh


def test_pip_installs_without_a_virtualenv(sandbox):
    """Like E2B's Python-based image: no PEP 668 refusal. Installs a package the test writes
    (no index, no network)."""
    sandbox.files.write("/home/user/pkg/pyproject.toml", (
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "hello_e2b"\nversion = "1.0"\n'))
    sandbox.files.write("/home/user/pkg/hello_e2b.py", "GREETING = 'hi from pip'\n")
    r = sandbox.commands.run("pip install --no-index --no-build-isolation /home/user/pkg", timeout=300)
    assert r.exit_code == 0, r.stderr
    assert sandbox.commands.run("python -c 'import hello_e2b; print(hello_e2b.GREETING)'").stdout.strip() == "hi from pip"


def test_official_git_helpers(sandbox):
    repo = "/home/user/repo"
    sandbox.git.init(repo, initial_branch="main")
    sandbox.files.write(f"{repo}/README.md", "hello\n")
    status = sandbox.git.status(repo)
    assert any(f.name == "README.md" for f in status.file_status), status
    sandbox.git.add(repo, all=True)
    sandbox.git.commit(repo, "first commit", author_name="Agent", author_email="agent@example.com")
    log = sandbox.commands.run(f"git -C {repo} log --format='%an %s'").stdout.strip()
    assert log == "Agent first commit"
    branches = sandbox.git.branches(repo)
    assert branches.current_branch == "main"
