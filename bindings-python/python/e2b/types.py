"""Option types of E2B's API as this SDK accepts them (``TypedDict``s and literals), plus
``ALL_TRAFFIC`` and ``get_signature``. Keys this SDK does not implement are refused at run time
(see ``core/src/options.rs``), so they are left out here."""

from typing import IO, Any, AsyncIterator, Callable, Dict, List, Literal, Optional, TypedDict, Union

from . import _native

#: CIDR range that represents all traffic (for ``network.deny_out`` / ``allow_out``).
ALL_TRAFFIC = "0.0.0.0/0"

#: What a pause or snapshot persists: memory and disk, or the disk only.
SnapshotMode = Literal["full", "filesystem"]
#: How a paused sandbox comes back: restore its memory, or cold-boot from its disk.
SandboxOnResume = Literal["restore", "reboot"]
SandboxListOrder = Literal["asc", "desc"]
Username = str
AsyncWriteData = Union[str, bytes, IO, AsyncIterator[bytes]]


class _OnTimeoutAction(TypedDict):
    action: Literal["pause"]


class SandboxOnTimeoutPause(_OnTimeoutAction, total=False):
    mode: SnapshotMode


#: What happens at the sandbox's timeout: ``"kill"``, ``"pause"`` or ``{"action", "mode"}``.
SandboxOnTimeout = Union[Literal["kill", "pause"], SandboxOnTimeoutPause]


class SandboxLifecycle(TypedDict, total=False):
    on_timeout: SandboxOnTimeout
    auto_resume: bool


class SandboxInfoLifecycle(TypedDict):
    """``SandboxInfo.lifecycle``: what happens at the timeout, and whether traffic resumes."""

    on_timeout: Literal["kill", "pause"]
    auto_resume: bool


class SandboxNetworkOpts(TypedDict, total=False):
    allow_out: List[str]
    deny_out: List[str]
    allow_public_traffic: bool
    mask_request_host: str


class ApiParams(TypedDict, total=False):
    """Connection options every call takes as ``**opts``."""

    request_timeout: Optional[float]
    headers: Optional[Dict[str, str]]
    api_key: Optional[str]
    domain: Optional[str]
    api_url: Optional[str]
    debug: Optional[bool]
    sandbox_url: Optional[str]


def get_signature(
    path: str,
    operation: Literal["read", "write"],
    user: Optional[str],
    envd_access_token: Optional[str],
    expiration_in_seconds: Optional[int] = None,
) -> Dict[str, Any]:
    """E2B's v1 signature of a file URL (computed in the core): ``{"signature", "expiration"}``.
    Without a token: ``InvalidArgumentException`` (a ``ValueError``, as E2B raises)."""
    signature, expiration = _native.file_signature(path, operation, user, envd_access_token, expiration_in_seconds)
    return {"signature": signature, "expiration": expiration}


class GitHubMcpServerConfig(TypedDict, total=False):
    """An MCP server built from a GitHub repository (key ``"github/<owner>/<repo>"``)."""

    run_cmd: str
    """Starts a stdio MCP server (required)."""
    install_cmd: str
    """Installs its dependencies, run in the repository's root."""
    envs: Dict[str, str]
    """Environment of the MCP process."""


#: MCP servers by name: catalogue servers with their settings, or ``github/owner/repo`` ones.
GitHubMcpServer = Dict[str, Union[GitHubMcpServerConfig, Any]]
#: What ``Sandbox.create(mcp=...)`` takes: the gateway's ``--config`` as a dict.
McpServer = Dict[str, Any]

SandboxIamTokenType = Union[Literal["JWT-SVID"], str]
"""Workload token type (``"JWT-SVID"``; any string is passed on)."""


class SandboxIamToken(TypedDict):
    """A workload identity token definition (``Secret.iam_token``)."""

    audience: str
    token_type: SandboxIamTokenType


# -- Network rule, egress proxy and workload identity shapes (E2B's types) ---------------------
# Exported so that code typed against E2B's SDK imports. `network.rules` work (headers with
# `${e2b.secrets.<name>}` and `${e2b.identity.tokens.<name>}` placeholders; callable transforms
# and selectors run in the SDK, as in E2B's); `egress_proxy`, `dns_servers` and `https_ports` are
# refused (never dropped) when a call uses them.


class SandboxNetworkTransform(TypedDict, total=False):
    """What a network rule changes in a matching outbound request."""

    headers: Dict[str, str]


class SandboxNetworkTransformContext:
    """What a callable transform receives: placeholders it may put into headers."""

    def __init__(self, iam_tokens: Optional[Dict[str, str]] = None) -> None:
        self.iam = type("SandboxNetworkTransformIam", (), {"tokens": dict(iam_tokens or {})})()


SandboxNetworkTransformResolver = Callable[[SandboxNetworkTransformContext], SandboxNetworkTransform]


class SandboxNetworkRule(TypedDict, total=False):
    """One rule for outbound requests to a host."""

    transform: Union[SandboxNetworkTransform, SandboxNetworkTransformResolver]


class SandboxNetworkRuleInfo(TypedDict, total=False):
    """A rule as ``get_info`` reports it (transforms resolved)."""

    transform: SandboxNetworkTransform


SandboxNetworkRules = Dict[str, List[SandboxNetworkRule]]


class SandboxNetworkSelectorContext:
    """What a callable ``allow_out`` / ``deny_out`` receives."""

    def __init__(self, rules: Optional[SandboxNetworkRules] = None) -> None:
        self.all_traffic = ALL_TRAFFIC
        self.rules = dict(rules or {})


SandboxNetworkSelector = Union[List[str], Callable[[SandboxNetworkSelectorContext], List[str]]]


class SandboxEgressProxyTLSOpts(TypedDict, total=False):
    server_name: str
    ca_cert: str


class SandboxEgressProxyOpts(TypedDict, total=False):
    """An upstream proxy all of a sandbox's egress goes through."""

    address: str
    username: str
    password: str
    tls: Union[bool, SandboxEgressProxyTLSOpts]


class SandboxEgressProxyTLSInfo(TypedDict, total=False):
    server_name: str


class SandboxEgressProxyInfo(TypedDict, total=False):
    address: str
    username: str
    tls: SandboxEgressProxyTLSInfo


class SandboxIamOpts(TypedDict, total=False):
    """Workload identity tokens a sandbox may present (``Secret.iam_token``)."""

    tokens: Dict[str, SandboxIamToken]


class SandboxNetworkUpdate(TypedDict, total=False):
    """The body of ``update_network``."""

    allow_out: SandboxNetworkSelector
    deny_out: SandboxNetworkSelector
    rules: SandboxNetworkRules
    egress_proxy: SandboxEgressProxyOpts
    dns_servers: List[str]
    allow_internet_access: bool


class SandboxNetworkInfo(TypedDict, total=False):
    """A sandbox's network settings as ``get_info`` reports them."""

    allow_out: List[str]
    deny_out: List[str]
    rules: Dict[str, List[SandboxNetworkRuleInfo]]
    egress_proxy: SandboxEgressProxyInfo
    dns_servers: List[str]
    allow_public_traffic: bool
    mask_request_host: str
    https_ports: List[int]


HttpVersion = Literal["1.1", "2"]
"""HTTP versions E2B's SDK can be told to use (``http_version``; refused by this SDK, which speaks
what the core negotiates)."""

ProxyTypes = Union[str, Any]
"""Forms of E2B's ``proxy`` option (refused by this SDK)."""
