"""``sandbox.git`` (sync and async) against a real sandboxd: a repository made, committed to,
branched, pushed to and pulled from a bare remote in the guest (``file://``, no network), with
the status parsed from real git output, and E2B's error classes for missing upstreams and
credentials."""


import pytest

import e2b
from e2b import AsyncSandbox, Sandbox

from conftest import Server

pytestmark = pytest.mark.sandboxd

REPO = "/home/user/repo"
REMOTE = "/home/user/remote.git"


def test_git_round_trip(sandbox: Sandbox) -> None:
    git = sandbox.git
    assert isinstance(git, e2b.Git)
    git.init(REMOTE, bare=True, initial_branch="main")
    git.init(REPO, initial_branch="main")
    git.configure_user("Ada", "ada@example.com", scope="local", path=REPO)
    assert git.get_config("user.email", scope="local", path=REPO) == "ada@example.com"
    assert git.get_config("user.nothing", scope="local", path=REPO) is None

    sandbox.files.write(f"{REPO}/a.txt", "one\n")
    st = git.status(REPO)
    assert st.current_branch == "main" and not st.detached
    assert [(f.name, f.status, f.staged) for f in st.file_status] == [("a.txt", "untracked", False)]
    assert st.has_untracked and st.untracked_count == 1 and not st.is_clean

    git.add(REPO)
    assert git.status(REPO).staged_count == 1
    git.commit(REPO, "first", author_name="Bob", author_email="bob@example.com")
    log = sandbox.commands.run(f"git -C {REPO} log --format='%an %s'").stdout
    assert log == "Bob first\n"
    assert git.status(REPO).is_clean

    # Push with no remote configured: E2B's upstream error... once a remote exists, it works.
    git.remote_add(REPO, "origin", f"file://{REMOTE}")
    assert git.remote_get(REPO, "origin") == f"file://{REMOTE}"
    assert git.remote_get(REPO, "nope") is None
    git.remote_add(REPO, "origin", f"file://{REMOTE}/", overwrite=True)
    assert git.remote_get(REPO, "origin") == f"file://{REMOTE}/"
    git.push(REPO, remote="origin", branch="main")
    st = git.status(REPO)
    assert st.upstream == "origin/main" and st.ahead == 0

    git.create_branch(REPO, "feature")
    branches = git.branches(REPO)
    assert branches.branches == ["feature", "main"] and branches.current_branch == "feature"
    git.checkout_branch(REPO, "main")
    git.delete_branch(REPO, "feature")
    assert git.branches(REPO).branches == ["main"]

    # A second clone pushes; the first pulls the commit.
    git.clone(f"file://{REMOTE}", path="/home/user/other")
    sandbox.files.write("/home/user/other/b.txt", "two\n")
    git.add("/home/user/other", files=["b.txt"])
    git.commit("/home/user/other", "second", author_name="Cy", author_email="cy@example.com")
    git.push("/home/user/other")
    git.pull(REPO)
    assert sandbox.files.read(f"{REPO}/b.txt") == "two\n"

    # reset / restore against real changes.
    sandbox.files.write(f"{REPO}/a.txt", "changed\n")
    assert git.status(REPO).file_status[0].status == "modified"
    git.restore(REPO, paths=["a.txt"])
    assert sandbox.files.read(f"{REPO}/a.txt") == "one\n"
    git.reset(REPO, mode="hard", target="HEAD~1")
    assert not sandbox.files.exists(f"{REPO}/b.txt")


def test_git_errors(sandbox: Sandbox) -> None:
    git = sandbox.git
    git.init(REPO, initial_branch="main")
    with pytest.raises(e2b.GitUpstreamException, match="no upstream branch is configured"):
        git.pull(REPO)
    with pytest.raises(e2b.InvalidArgumentException, match="Reset mode must be one of"):
        git.reset(REPO, mode="sideways")
    with pytest.raises(e2b.InvalidArgumentException, match="Username is required"):
        git.clone("https://example.invalid/r.git", password="secret")
    with pytest.raises(e2b.InvalidArgumentException, match="Repository path is required"):
        git.set_config("user.name", "x", scope="local")
    # A failing git command that is neither: the plain CommandExitException with git's stderr.
    with pytest.raises(e2b.CommandExitException) as info:
        git.checkout_branch(REPO, "no-such-branch")
    assert "no-such-branch" in info.value.stderr
    # Credentials are stored for later commands only when asked to.
    git.dangerously_authenticate("ada", "tok'en", host="git.example.com")
    stored = sandbox.commands.run("cat ~/.git-credentials").stdout
    assert stored == "https://ada:tok%27en@git.example.com\n"


async def test_async_git(sandboxd: Server) -> None:
    sbx = await AsyncSandbox.create()
    try:
        await sbx.git.init(REPO, initial_branch="trunk")
        await sbx.files.write(f"{REPO}/x", "x")
        st = await sbx.git.status(REPO)
        assert st.current_branch == "trunk" and st.total_count == 1
        with pytest.raises(e2b.InvalidArgumentException):
            await sbx.git.restore(REPO, paths=[], staged=False)
    finally:
        await sbx.kill()
