"""``TemplateBase`` / ``TemplateBuilder`` / ``TemplateFinal``: E2B's chainable template builder.

Every step is recorded by the core's ``Template`` (``self._core``), which produces the exact
instructions the official SDK does; this module only adapts Python arguments (str or list,
``Path``, ``ReadyCmd``) and chains.
"""

import inspect
import json
import os
from pathlib import Path
from typing import Any, Dict, List, Literal, Optional, Union

from .. import _native
from ..exceptions import InvalidArgumentException
from .dockerfile_parser import DockerfileSyntaxError
from .readycmd import ReadyCmd
from .types import CopyItem

PathLike = Union[str, Path]

_SDK_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _caller_directory() -> Optional[str]:
    """Directory of the first caller outside this package (the default context dir)."""
    frame = inspect.currentframe()
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        try:
            outside = os.path.commonpath([_SDK_DIR, filename]) != _SDK_DIR
        except ValueError:
            outside = True
        if outside:
            return os.path.dirname(filename)
        frame = frame.f_back
    return None


def _paths(p: Union[PathLike, List[PathLike]]) -> List[str]:
    return [str(p)] if isinstance(p, (str, Path)) else [str(x) for x in p]


def _packages(p: Optional[Union[str, List[str]]]) -> Optional[List[str]]:
    return [p] if isinstance(p, str) else p


def _ready(cmd: Union[str, ReadyCmd]) -> str:
    return cmd.get_cmd() if isinstance(cmd, ReadyCmd) else cmd


class TemplateBuilder:
    """Builder class for adding instructions to an E2B template. All methods return self."""

    def __init__(self, template: "TemplateBase"):
        self._template = template

    @property
    def _core(self) -> Any:
        return self._template._core

    def copy(
        self,
        src: Union[Union[str, Path], List[Union[str, Path]]],
        dest: Union[str, Path],
        force_upload: Optional[Literal[True]] = None,
        user: Optional[str] = None,
        mode: Optional[int] = None,
        resolve_symlinks: Optional[bool] = None,
        gzip: Optional[bool] = None,
    ) -> "TemplateBuilder":
        """Copy files or directories (relative to the context directory) into the template."""
        self._core.copy(_paths(src), str(dest), force_upload, user, mode, resolve_symlinks, gzip)
        return self

    def copy_items(self, items: List[CopyItem]) -> "TemplateBuilder":
        """Copy several sources, each a ``CopyItem`` dict."""
        for item in items:
            self.copy(
                item["src"],
                item["dest"],
                item.get("forceUpload"),
                item.get("user"),
                item.get("mode"),
                item.get("resolveSymlinks"),
                item.get("gzip"),
            )
        return self

    def remove(
        self,
        path: Union[Union[str, Path], List[Union[str, Path]]],
        force: bool = False,
        recursive: bool = False,
        user: Optional[str] = None,
    ) -> "TemplateBuilder":
        """Remove files or directories in the template."""
        self._core.remove(_paths(path), force, recursive, user)
        return self

    def rename(
        self,
        src: Union[str, Path],
        dest: Union[str, Path],
        force: bool = False,
        user: Optional[str] = None,
    ) -> "TemplateBuilder":
        """Rename or move a file or directory in the template."""
        self._core.rename(str(src), str(dest), force, user)
        return self

    def make_dir(
        self,
        path: Union[Union[str, Path], List[Union[str, Path]]],
        mode: Optional[int] = None,
        user: Optional[str] = None,
    ) -> "TemplateBuilder":
        """Create directories in the template."""
        self._core.make_dir(_paths(path), mode, user)
        return self

    def make_symlink(
        self,
        src: Union[str, Path],
        dest: Union[str, Path],
        user: Optional[str] = None,
        force: bool = False,
    ) -> "TemplateBuilder":
        """Create a symbolic link ``dest`` pointing at ``src``."""
        self._core.make_symlink(str(src), str(dest), user, force)
        return self

    def run_cmd(self, command: Union[str, List[str]], user: Optional[str] = None) -> "TemplateBuilder":
        """Run a shell command (a list is joined with ``&&``)."""
        self._core.run_cmd([command] if isinstance(command, str) else list(command), user)
        return self

    def set_workdir(self, workdir: Union[str, Path]) -> "TemplateBuilder":
        """Set the working directory for subsequent commands."""
        self._core.set_workdir(str(workdir))
        return self

    def set_user(self, user: str) -> "TemplateBuilder":
        """Set the user for subsequent commands."""
        self._core.set_user(user)
        return self

    def pip_install(self, packages: Optional[Union[str, List[str]]] = None, g: bool = True) -> "TemplateBuilder":
        """``pip install`` packages (globally as root by default; ``g=False``: ``--user``)."""
        self._core.pip_install(_packages(packages), g)
        return self

    def npm_install(
        self,
        packages: Optional[Union[str, List[str]]] = None,
        g: Optional[bool] = False,
        dev: Optional[bool] = False,
    ) -> "TemplateBuilder":
        """``npm install`` packages (``g``: globally as root; ``dev``: ``--save-dev``)."""
        self._core.npm_install(_packages(packages), bool(g), bool(dev))
        return self

    def bun_install(
        self,
        packages: Optional[Union[str, List[str]]] = None,
        g: Optional[bool] = False,
        dev: Optional[bool] = False,
    ) -> "TemplateBuilder":
        """``bun install`` packages (``g``: globally as root; ``dev``: ``--dev``)."""
        self._core.bun_install(_packages(packages), bool(g), bool(dev))
        return self

    def apt_install(
        self,
        packages: Union[str, List[str]],
        no_install_recommends: bool = False,
        fix_missing: bool = False,
    ) -> "TemplateBuilder":
        """``apt-get install`` packages as root."""
        self._core.apt_install(_packages(packages), no_install_recommends, fix_missing)
        return self

    def add_mcp_server(self, servers: Union[str, List[str]]) -> "TemplateBuilder":
        """Install MCP servers (``mcp-gateway`` template only)."""
        self._core.add_mcp_server(_packages(servers))
        return self

    def git_clone(
        self,
        url: str,
        path: Optional[Union[str, Path]] = None,
        branch: Optional[str] = None,
        depth: Optional[int] = None,
        user: Optional[str] = None,
    ) -> "TemplateBuilder":
        """Clone a git repository into the template."""
        self._core.git_clone(url, str(path) if path else None, branch, depth, user)
        return self

    def beta_dev_container_prebuild(self, devcontainer_directory: Union[str, Path]) -> "TemplateBuilder":
        """Prebuild a devcontainer (``devcontainer`` template only)."""
        self._core.beta_dev_container_prebuild(str(devcontainer_directory))
        return self

    def beta_set_dev_container_start(self, devcontainer_directory: Union[str, Path]) -> "TemplateFinal":
        """Start a devcontainer as the start command (``devcontainer`` template only)."""
        self._core.beta_set_dev_container_start(str(devcontainer_directory))
        return TemplateFinal(self._template)

    def set_envs(self, envs: Dict[str, str]) -> "TemplateBuilder":
        """Set environment variables (available during the build)."""
        self._core.set_envs([(str(k), str(v)) for k, v in envs.items()])
        return self

    def skip_cache(self) -> "TemplateBuilder":
        """Rebuild this and every following layer, ignoring the cache."""
        self._core.skip_cache()
        return self

    def set_start_cmd(self, start_cmd: str, ready_cmd: Union[str, ReadyCmd]) -> "TemplateFinal":
        """The command started in the sandbox, and the command that says it is ready."""
        self._core.set_start_cmd(start_cmd, _ready(ready_cmd))
        return TemplateFinal(self._template)

    def set_ready_cmd(self, ready_cmd: Union[str, ReadyCmd]) -> "TemplateFinal":
        """The command that says the sandbox is ready."""
        self._core.set_ready_cmd(_ready(ready_cmd))
        return TemplateFinal(self._template)


class TemplateFinal:
    """Final template state after start/ready commands are set."""

    def __init__(self, template: "TemplateBase"):
        self._template = template


class TemplateBase:
    """Base class for building E2B sandbox templates."""

    def __init__(
        self,
        file_context_path: Optional[Union[str, Path]] = None,
        file_ignore_patterns: Optional[List[str]] = None,
    ):
        """:param file_context_path: base of relative ``copy`` sources (default: the caller's
        directory); :param file_ignore_patterns: ``.dockerignore``-syntax patterns applied after
        the context's ``.dockerignore``."""
        ctx = (
            file_context_path.as_posix()
            if isinstance(file_context_path, Path)
            else (file_context_path or _caller_directory() or ".")
        )
        self._file_context_path = ctx
        self._core = _native.TemplateCore(ctx, list(file_ignore_patterns or []))

    @property
    def _template(self) -> "TemplateBase":
        return self

    def skip_cache(self) -> "TemplateBase":
        """Skip the cache for everything after this point."""
        self._core.skip_cache()
        return self

    def from_debian_image(self, variant: str = "stable") -> TemplateBuilder:
        return self.from_image(f"debian:{variant}")

    def from_ubuntu_image(self, variant: str = "latest") -> TemplateBuilder:
        return self.from_image(f"ubuntu:{variant}")

    def from_fedora_image(self, variant: str = "44") -> TemplateBuilder:
        return self.from_image(f"fedora:{variant}")

    def from_alpine_image(self, variant: str = "3.24") -> TemplateBuilder:
        return self.from_image(f"alpine:{variant}")

    def from_arch_image(self, variant: str = "latest") -> TemplateBuilder:
        return self.from_image(f"archlinux:{variant}")

    def from_python_image(self, version: str = "3") -> TemplateBuilder:
        return self.from_image(f"python:{version}")

    def from_node_image(self, variant: str = "lts") -> TemplateBuilder:
        return self.from_image(f"node:{variant}")

    def from_bun_image(self, variant: str = "latest") -> TemplateBuilder:
        return self.from_image(f"oven/bun:{variant}")

    def from_base_image(self) -> TemplateBuilder:
        """Start from E2B's base image (``e2bdev/base``)."""
        return self.from_image("e2bdev/base")

    def from_image(
        self,
        image: str,
        username: Optional[str] = None,
        password: Optional[str] = None,
    ) -> TemplateBuilder:
        """Start from an OCI image, with registry credentials when given."""
        self._core.from_image(image, username, password)
        return TemplateBuilder(self)

    def from_template(self, template: str) -> TemplateBuilder:
        """Start from an existing template (ID or name)."""
        self._core.from_template(template)
        return TemplateBuilder(self)

    def from_dockerfile(self, dockerfile_content_or_path: str) -> TemplateBuilder:
        """Turn a Dockerfile (content or path) into the base image and steps."""
        try:
            self._core.from_dockerfile(dockerfile_content_or_path)
        except InvalidArgumentException as e:
            if str(e).startswith("Dockerfile parse error"):
                raise DockerfileSyntaxError(str(e)) from None
            raise
        return TemplateBuilder(self)

    def from_aws_registry(
        self,
        image: str,
        access_key_id: str,
        secret_access_key: str,
        region: str,
    ) -> TemplateBuilder:
        """Start from an AWS ECR image."""
        self._core.from_aws_registry(image, access_key_id, secret_access_key, region)
        return TemplateBuilder(self)

    def from_gcp_registry(self, image: str, service_account_json: Union[str, dict]) -> TemplateBuilder:
        """Start from a GCP registry image (service account JSON: a path or a dict)."""
        if isinstance(service_account_json, str):
            self._core.from_gcp_registry(image, service_account_json, False)
        else:
            self._core.from_gcp_registry(image, json.dumps(service_account_json), True)
        return TemplateBuilder(self)

    @staticmethod
    def to_json(template: "TemplateClass") -> str:
        """The build request of ``template`` (files hashes included) as indented JSON."""
        return template._template._core.to_json()

    @staticmethod
    def to_dockerfile(template: "TemplateClass") -> str:
        """``template`` as a Dockerfile (not for templates based on another template)."""
        try:
            return template._template._core.to_dockerfile()
        except InvalidArgumentException as e:
            raise ValueError(str(e)) from None


TemplateClass = Union[TemplateFinal, TemplateBuilder]
