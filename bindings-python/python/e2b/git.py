"""``sandbox.git`` (sync and async): E2B's git helpers, with E2B's signatures.

Deprecated upstream (run git with ``sandbox.commands.run()``), kept for code written against
E2B's SDK. The core builds, runs and parses every git command (``Git::call``); this module
only passes the arguments (timeouts in ms, as the core takes them) and builds the data classes.
"""

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Literal, Optional

from . import _native
from .exceptions import CommandResult

GitResetMode = Literal["soft", "mixed", "hard", "merge", "keep"]


@dataclass
class GitFileStatus:
    """One changed path: ``status`` is ``modified``, ``added``, ``untracked``, …"""

    name: str
    status: str
    index_status: str
    working_tree_status: str
    staged: bool
    renamed_from: Optional[str] = None


@dataclass
class GitStatus:
    """Parsed ``git status --porcelain=1 -b``."""

    current_branch: Optional[str]
    upstream: Optional[str]
    ahead: int
    behind: int
    detached: bool
    file_status: List[GitFileStatus] = field(default_factory=list)

    @classmethod
    def _of(cls, raw: str) -> "GitStatus":
        d = json.loads(raw)
        files = [
            GitFileStatus(f["name"], f["status"], f["indexStatus"], f["workingTreeStatus"], f["staged"], f.get("renamedFrom"))
            for f in d["fileStatus"]
        ]
        return cls(d.get("currentBranch"), d.get("upstream"), d["ahead"], d["behind"], d["detached"], files)

    @property
    def is_clean(self) -> bool:
        return len(self.file_status) == 0

    @property
    def has_changes(self) -> bool:
        return len(self.file_status) > 0

    @property
    def has_staged(self) -> bool:
        return any(f.staged for f in self.file_status)

    @property
    def has_untracked(self) -> bool:
        return any(f.status == "untracked" for f in self.file_status)

    @property
    def has_conflicts(self) -> bool:
        return any(f.status == "conflict" for f in self.file_status)

    @property
    def total_count(self) -> int:
        return len(self.file_status)

    @property
    def staged_count(self) -> int:
        return sum(1 for f in self.file_status if f.staged)

    @property
    def unstaged_count(self) -> int:
        return sum(1 for f in self.file_status if not f.staged)

    @property
    def untracked_count(self) -> int:
        return sum(1 for f in self.file_status if f.status == "untracked")

    @property
    def conflict_count(self) -> int:
        return sum(1 for f in self.file_status if f.status == "conflict")


@dataclass
class GitBranches:
    """Branch names and the checked-out one."""

    branches: List[str]
    current_branch: Optional[str]

    @classmethod
    def _of(cls, raw: str) -> "GitBranches":
        d = json.loads(raw)
        return cls(d["branches"], d.get("currentBranch"))


def _ms(seconds: Optional[float]) -> Optional[float]:
    return None if seconds is None else seconds * 1000.0


def _args(positional: Dict[str, Any], opts: Dict[str, Any], envs: Any, user: Any, cwd: Any, timeout: Any, request_timeout: Any) -> str:
    o = {k: v for k, v in opts.items() if v is not None}
    o.update({k: v for k, v in (("envs", envs), ("user", user), ("cwd", cwd), ("timeoutMs", _ms(timeout)), ("requestTimeoutMs", _ms(request_timeout))) if v is not None})
    return json.dumps({**positional, "opts": o})


class Git:
    """Git operations in the sandbox (sync).

    :deprecated: Run git with ``sandbox.commands.run()`` instead (as E2B's SDK says).
    """

    def __init__(self, native: _native.Git) -> None:
        self._g = native

    def clone(self, url: str, path: Optional[str] = None, branch: Optional[str] = None, depth: Optional[int] = None, username: Optional[str] = None, password: Optional[str] = None, envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, timeout: Optional[float] = None, request_timeout: Optional[float] = None, dangerously_store_credentials: bool = False) -> CommandResult:
        """Clone a git repository into the sandbox; credentials are stripped from the stored remote unless ``dangerously_store_credentials``."""
        v = self._g.call("clone", _args({"url": url}, {"path": path, "branch": branch, "depth": depth, "username": username, "password": password, "dangerouslyStoreCredentials": dangerously_store_credentials}, envs, user, cwd, timeout, request_timeout)).wait()
        return CommandResult._of(v)

    def init(self, path: str, bare: bool = False, initial_branch: Optional[str] = None, envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, timeout: Optional[float] = None, request_timeout: Optional[float] = None) -> CommandResult:
        """Initialize a new git repository."""
        v = self._g.call("init", _args({"path": path}, {"bare": bare, "initialBranch": initial_branch}, envs, user, cwd, timeout, request_timeout)).wait()
        return CommandResult._of(v)

    def remote_add(self, path: str, name: str, url: str, fetch: bool = False, overwrite: bool = False, envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, timeout: Optional[float] = None, request_timeout: Optional[float] = None) -> CommandResult:
        """Add (or with ``overwrite``, update) a remote."""
        v = self._g.call("remote_add", _args({"path": path, "name": name, "url": url}, {"fetch": fetch, "overwrite": overwrite}, envs, user, cwd, timeout, request_timeout)).wait()
        return CommandResult._of(v)

    def remote_get(self, path: str, name: str, envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, timeout: Optional[float] = None, request_timeout: Optional[float] = None) -> Optional[str]:
        """The URL of a remote, ``None`` when it does not exist."""
        v = self._g.call("remote_get", _args({"path": path, "name": name}, {}, envs, user, cwd, timeout, request_timeout)).wait()
        return v

    def status(self, path: str, envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, timeout: Optional[float] = None, request_timeout: Optional[float] = None) -> GitStatus:
        """Repository status."""
        v = self._g.call("status", _args({"path": path}, {}, envs, user, cwd, timeout, request_timeout)).wait()
        return GitStatus._of(v)

    def branches(self, path: str, envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, timeout: Optional[float] = None, request_timeout: Optional[float] = None) -> GitBranches:
        """Branches of the repository."""
        v = self._g.call("branches", _args({"path": path}, {}, envs, user, cwd, timeout, request_timeout)).wait()
        return GitBranches._of(v)

    def create_branch(self, path: str, branch: str, envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, timeout: Optional[float] = None, request_timeout: Optional[float] = None) -> CommandResult:
        """Create a branch and check it out."""
        v = self._g.call("create_branch", _args({"path": path, "branch": branch}, {}, envs, user, cwd, timeout, request_timeout)).wait()
        return CommandResult._of(v)

    def checkout_branch(self, path: str, branch: str, envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, timeout: Optional[float] = None, request_timeout: Optional[float] = None) -> CommandResult:
        """Check out a branch."""
        v = self._g.call("checkout_branch", _args({"path": path, "branch": branch}, {}, envs, user, cwd, timeout, request_timeout)).wait()
        return CommandResult._of(v)

    def delete_branch(self, path: str, branch: str, force: bool = False, envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, timeout: Optional[float] = None, request_timeout: Optional[float] = None) -> CommandResult:
        """Delete a branch."""
        v = self._g.call("delete_branch", _args({"path": path, "branch": branch}, {"force": force}, envs, user, cwd, timeout, request_timeout)).wait()
        return CommandResult._of(v)

    def add(self, path: str, files: Optional[List[str]] = None, all: bool = True, envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, timeout: Optional[float] = None, request_timeout: Optional[float] = None) -> CommandResult:
        """Stage files (everything by default)."""
        v = self._g.call("add", _args({"path": path}, {"files": files, "all": all}, envs, user, cwd, timeout, request_timeout)).wait()
        return CommandResult._of(v)

    def commit(self, path: str, message: str, author_name: Optional[str] = None, author_email: Optional[str] = None, allow_empty: bool = False, envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, timeout: Optional[float] = None, request_timeout: Optional[float] = None) -> CommandResult:
        """Create a commit."""
        v = self._g.call("commit", _args({"path": path, "message": message}, {"authorName": author_name, "authorEmail": author_email, "allowEmpty": allow_empty}, envs, user, cwd, timeout, request_timeout)).wait()
        return CommandResult._of(v)

    def reset(self, path: str, mode: Optional[GitResetMode] = None, target: Optional[str] = None, paths: Optional[List[str]] = None, envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, timeout: Optional[float] = None, request_timeout: Optional[float] = None) -> CommandResult:
        """Reset the current HEAD."""
        v = self._g.call("reset", _args({"path": path}, {"mode": mode, "target": target, "paths": paths}, envs, user, cwd, timeout, request_timeout)).wait()
        return CommandResult._of(v)

    def restore(self, path: str, paths: List[str], staged: Optional[bool] = None, worktree: Optional[bool] = None, source: Optional[str] = None, envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, timeout: Optional[float] = None, request_timeout: Optional[float] = None) -> CommandResult:
        """Restore working tree files or the index."""
        v = self._g.call("restore", _args({"path": path}, {"paths": paths, "staged": staged, "worktree": worktree, "source": source}, envs, user, cwd, timeout, request_timeout)).wait()
        return CommandResult._of(v)

    def push(self, path: str, remote: Optional[str] = None, branch: Optional[str] = None, set_upstream: bool = True, username: Optional[str] = None, password: Optional[str] = None, envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, timeout: Optional[float] = None, request_timeout: Optional[float] = None) -> CommandResult:
        """Push commits to a remote."""
        v = self._g.call("push", _args({"path": path}, {"remote": remote, "branch": branch, "setUpstream": set_upstream, "username": username, "password": password}, envs, user, cwd, timeout, request_timeout)).wait()
        return CommandResult._of(v)

    def pull(self, path: str, remote: Optional[str] = None, branch: Optional[str] = None, username: Optional[str] = None, password: Optional[str] = None, envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, timeout: Optional[float] = None, request_timeout: Optional[float] = None) -> CommandResult:
        """Pull changes from a remote."""
        v = self._g.call("pull", _args({"path": path}, {"remote": remote, "branch": branch, "username": username, "password": password}, envs, user, cwd, timeout, request_timeout)).wait()
        return CommandResult._of(v)

    def set_config(self, key: str, value: str, scope: str = "global", path: Optional[str] = None, envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, timeout: Optional[float] = None, request_timeout: Optional[float] = None) -> CommandResult:
        """Set a git config value."""
        v = self._g.call("set_config", _args({"key": key, "value": value}, {"scope": scope, "path": path}, envs, user, cwd, timeout, request_timeout)).wait()
        return CommandResult._of(v)

    def get_config(self, key: str, scope: str = "global", path: Optional[str] = None, envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, timeout: Optional[float] = None, request_timeout: Optional[float] = None) -> Optional[str]:
        """A git config value, ``None`` when it is not set."""
        v = self._g.call("get_config", _args({"key": key}, {"scope": scope, "path": path}, envs, user, cwd, timeout, request_timeout)).wait()
        return v

    def dangerously_authenticate(self, username: str, password: str, host: str = "github.com", protocol: str = "https", envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, timeout: Optional[float] = None, request_timeout: Optional[float] = None) -> CommandResult:
        """Store credentials with git's credential helper, globally (readable by anything in the sandbox)."""
        v = self._g.call("dangerously_authenticate", _args({}, {"username": username, "password": password, "host": host, "protocol": protocol}, envs, user, cwd, timeout, request_timeout)).wait()
        return CommandResult._of(v)

    def configure_user(self, name: str, email: str, scope: str = "global", path: Optional[str] = None, envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, timeout: Optional[float] = None, request_timeout: Optional[float] = None) -> CommandResult:
        """Set ``user.name`` and ``user.email``."""
        v = self._g.call("configure_user", _args({"name": name, "email": email}, {"scope": scope, "path": path}, envs, user, cwd, timeout, request_timeout)).wait()
        return CommandResult._of(v)


class AsyncGit:
    """Git operations in the sandbox (async).

    :deprecated: Run git with ``sandbox.commands.run()`` instead (as E2B's SDK says).
    """

    def __init__(self, native: _native.Git) -> None:
        self._g = native

    async def clone(self, url: str, path: Optional[str] = None, branch: Optional[str] = None, depth: Optional[int] = None, username: Optional[str] = None, password: Optional[str] = None, envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, timeout: Optional[float] = None, request_timeout: Optional[float] = None, dangerously_store_credentials: bool = False) -> CommandResult:
        """Clone a git repository into the sandbox; credentials are stripped from the stored remote unless ``dangerously_store_credentials``."""
        v = await self._g.call("clone", _args({"url": url}, {"path": path, "branch": branch, "depth": depth, "username": username, "password": password, "dangerouslyStoreCredentials": dangerously_store_credentials}, envs, user, cwd, timeout, request_timeout)).awaitable()
        return CommandResult._of(v)

    async def init(self, path: str, bare: bool = False, initial_branch: Optional[str] = None, envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, timeout: Optional[float] = None, request_timeout: Optional[float] = None) -> CommandResult:
        """Initialize a new git repository."""
        v = await self._g.call("init", _args({"path": path}, {"bare": bare, "initialBranch": initial_branch}, envs, user, cwd, timeout, request_timeout)).awaitable()
        return CommandResult._of(v)

    async def remote_add(self, path: str, name: str, url: str, fetch: bool = False, overwrite: bool = False, envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, timeout: Optional[float] = None, request_timeout: Optional[float] = None) -> CommandResult:
        """Add (or with ``overwrite``, update) a remote."""
        v = await self._g.call("remote_add", _args({"path": path, "name": name, "url": url}, {"fetch": fetch, "overwrite": overwrite}, envs, user, cwd, timeout, request_timeout)).awaitable()
        return CommandResult._of(v)

    async def remote_get(self, path: str, name: str, envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, timeout: Optional[float] = None, request_timeout: Optional[float] = None) -> Optional[str]:
        """The URL of a remote, ``None`` when it does not exist."""
        v = await self._g.call("remote_get", _args({"path": path, "name": name}, {}, envs, user, cwd, timeout, request_timeout)).awaitable()
        return v

    async def status(self, path: str, envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, timeout: Optional[float] = None, request_timeout: Optional[float] = None) -> GitStatus:
        """Repository status."""
        v = await self._g.call("status", _args({"path": path}, {}, envs, user, cwd, timeout, request_timeout)).awaitable()
        return GitStatus._of(v)

    async def branches(self, path: str, envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, timeout: Optional[float] = None, request_timeout: Optional[float] = None) -> GitBranches:
        """Branches of the repository."""
        v = await self._g.call("branches", _args({"path": path}, {}, envs, user, cwd, timeout, request_timeout)).awaitable()
        return GitBranches._of(v)

    async def create_branch(self, path: str, branch: str, envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, timeout: Optional[float] = None, request_timeout: Optional[float] = None) -> CommandResult:
        """Create a branch and check it out."""
        v = await self._g.call("create_branch", _args({"path": path, "branch": branch}, {}, envs, user, cwd, timeout, request_timeout)).awaitable()
        return CommandResult._of(v)

    async def checkout_branch(self, path: str, branch: str, envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, timeout: Optional[float] = None, request_timeout: Optional[float] = None) -> CommandResult:
        """Check out a branch."""
        v = await self._g.call("checkout_branch", _args({"path": path, "branch": branch}, {}, envs, user, cwd, timeout, request_timeout)).awaitable()
        return CommandResult._of(v)

    async def delete_branch(self, path: str, branch: str, force: bool = False, envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, timeout: Optional[float] = None, request_timeout: Optional[float] = None) -> CommandResult:
        """Delete a branch."""
        v = await self._g.call("delete_branch", _args({"path": path, "branch": branch}, {"force": force}, envs, user, cwd, timeout, request_timeout)).awaitable()
        return CommandResult._of(v)

    async def add(self, path: str, files: Optional[List[str]] = None, all: bool = True, envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, timeout: Optional[float] = None, request_timeout: Optional[float] = None) -> CommandResult:
        """Stage files (everything by default)."""
        v = await self._g.call("add", _args({"path": path}, {"files": files, "all": all}, envs, user, cwd, timeout, request_timeout)).awaitable()
        return CommandResult._of(v)

    async def commit(self, path: str, message: str, author_name: Optional[str] = None, author_email: Optional[str] = None, allow_empty: bool = False, envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, timeout: Optional[float] = None, request_timeout: Optional[float] = None) -> CommandResult:
        """Create a commit."""
        v = await self._g.call("commit", _args({"path": path, "message": message}, {"authorName": author_name, "authorEmail": author_email, "allowEmpty": allow_empty}, envs, user, cwd, timeout, request_timeout)).awaitable()
        return CommandResult._of(v)

    async def reset(self, path: str, mode: Optional[GitResetMode] = None, target: Optional[str] = None, paths: Optional[List[str]] = None, envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, timeout: Optional[float] = None, request_timeout: Optional[float] = None) -> CommandResult:
        """Reset the current HEAD."""
        v = await self._g.call("reset", _args({"path": path}, {"mode": mode, "target": target, "paths": paths}, envs, user, cwd, timeout, request_timeout)).awaitable()
        return CommandResult._of(v)

    async def restore(self, path: str, paths: List[str], staged: Optional[bool] = None, worktree: Optional[bool] = None, source: Optional[str] = None, envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, timeout: Optional[float] = None, request_timeout: Optional[float] = None) -> CommandResult:
        """Restore working tree files or the index."""
        v = await self._g.call("restore", _args({"path": path}, {"paths": paths, "staged": staged, "worktree": worktree, "source": source}, envs, user, cwd, timeout, request_timeout)).awaitable()
        return CommandResult._of(v)

    async def push(self, path: str, remote: Optional[str] = None, branch: Optional[str] = None, set_upstream: bool = True, username: Optional[str] = None, password: Optional[str] = None, envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, timeout: Optional[float] = None, request_timeout: Optional[float] = None) -> CommandResult:
        """Push commits to a remote."""
        v = await self._g.call("push", _args({"path": path}, {"remote": remote, "branch": branch, "setUpstream": set_upstream, "username": username, "password": password}, envs, user, cwd, timeout, request_timeout)).awaitable()
        return CommandResult._of(v)

    async def pull(self, path: str, remote: Optional[str] = None, branch: Optional[str] = None, username: Optional[str] = None, password: Optional[str] = None, envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, timeout: Optional[float] = None, request_timeout: Optional[float] = None) -> CommandResult:
        """Pull changes from a remote."""
        v = await self._g.call("pull", _args({"path": path}, {"remote": remote, "branch": branch, "username": username, "password": password}, envs, user, cwd, timeout, request_timeout)).awaitable()
        return CommandResult._of(v)

    async def set_config(self, key: str, value: str, scope: str = "global", path: Optional[str] = None, envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, timeout: Optional[float] = None, request_timeout: Optional[float] = None) -> CommandResult:
        """Set a git config value."""
        v = await self._g.call("set_config", _args({"key": key, "value": value}, {"scope": scope, "path": path}, envs, user, cwd, timeout, request_timeout)).awaitable()
        return CommandResult._of(v)

    async def get_config(self, key: str, scope: str = "global", path: Optional[str] = None, envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, timeout: Optional[float] = None, request_timeout: Optional[float] = None) -> Optional[str]:
        """A git config value, ``None`` when it is not set."""
        v = await self._g.call("get_config", _args({"key": key}, {"scope": scope, "path": path}, envs, user, cwd, timeout, request_timeout)).awaitable()
        return v

    async def dangerously_authenticate(self, username: str, password: str, host: str = "github.com", protocol: str = "https", envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, timeout: Optional[float] = None, request_timeout: Optional[float] = None) -> CommandResult:
        """Store credentials with git's credential helper, globally (readable by anything in the sandbox)."""
        v = await self._g.call("dangerously_authenticate", _args({}, {"username": username, "password": password, "host": host, "protocol": protocol}, envs, user, cwd, timeout, request_timeout)).awaitable()
        return CommandResult._of(v)

    async def configure_user(self, name: str, email: str, scope: str = "global", path: Optional[str] = None, envs: Optional[Dict[str, str]] = None, user: Optional[str] = None, cwd: Optional[str] = None, timeout: Optional[float] = None, request_timeout: Optional[float] = None) -> CommandResult:
        """Set ``user.name`` and ``user.email``."""
        v = await self._g.call("configure_user", _args({"name": name, "email": email}, {"scope": scope, "path": path}, envs, user, cwd, timeout, request_timeout)).awaitable()
        return CommandResult._of(v)
