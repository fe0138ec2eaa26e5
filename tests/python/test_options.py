"""Options of E2B's SDK that this SDK does not implement are refused before any request, and
wrong keywords fail as Python does: nothing is silently dropped (issue 12). What the implemented
options put on the wire is checked against the official SDK in test_wire.py. No sandboxd needed."""

import pytest

import e2b
from e2b import AsyncSandbox, Sandbox
from fake_e2b import FakeE2B

SID = "ifake0000000000000001"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch):
    with FakeE2B() as srv:
        for k, v in srv.env().items():
            monkeypatch.setenv(k, v)
        yield srv


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"mcp": ["github"]}, "mcp must be an object"),
        ({"retries": 3}, "'retries'"),
        ({"proxy": "http://p:1"}, "'proxy'"),
        ({"api_headers": {"a": "b"}}, "'api_headers'"),
        ({"network": {"egress_proxy": {"address": "p:1080"}}}, "'egress_proxy'"),
        ({"network": {"rules": {"a.example.com": [{"transform": lambda ctx: {"headers": {"A": ctx.iam.tokens["nope"]}}}]}}},
         "iam token 'nope', which is not registered"),
        ({"iam": {"tokens": {"a{b": {"audience": "x", "token_type": "JWT-SVID"}}}}, "cannot be empty or contain"),
        ({"lifecycle": {"on_timeout": "stop"}}, "on_timeout must be one of: pause, kill"),
        ({"lifecycle": {"on_timeout": "kill", "auto_resume": True}}, "auto_resume can only be True"),
        ({"idempotency_key": "Not Valid"}, "only lowercase letters"),
    ],
)
def test_unimplemented_or_invalid_create_options_are_refused(fake: FakeE2B, kwargs: dict, words: str) -> None:
    with pytest.raises(e2b.InvalidArgumentException, match=None) as exc:
        Sandbox.create(**kwargs)
    assert words in str(exc.value)
    assert fake.recorder.requests == [], "nothing may be sent for a refused option"


def test_unknown_keyword_is_a_type_error(fake: FakeE2B) -> None:
    with pytest.raises(TypeError, match="create\\(\\) got an unexpected keyword argument 'lifecylce'"):
        Sandbox.create(lifecylce={"on_timeout": "pause"})
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        Sandbox.kill(SID, bogus=1)
    assert fake.recorder.requests == []


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda: Sandbox.pause(SID, mode="half"), "mode must be one of: full, filesystem"),
        (lambda: Sandbox.pause(SID, keep_memory=True, mode="full"), "not both"),
        (lambda: Sandbox.connect(SID, on_resume="warm"), "on_resume must be one of: restore, reboot"),
        (lambda: Sandbox.create_snapshot(SID, mode="memory"), "mode must be one of"),
        (lambda: Sandbox.connect(SID, logger=object()), "'logger'"),
    ],
)
def test_invalid_pause_connect_snapshot_options(fake: FakeE2B, call, words: str) -> None:
    with pytest.raises(e2b.InvalidArgumentException) as exc:
        call()
    assert words in str(exc.value)
    assert fake.recorder.requests == []


async def test_async_refuses_the_same(fake: FakeE2B) -> None:
    with pytest.raises(e2b.InvalidArgumentException):
        await AsyncSandbox.create(iam={"tokens": {"a}b": {"audience": "x", "token_type": "JWT-SVID"}}})
    with pytest.raises(TypeError):
        await AsyncSandbox.create(bogus=1)
    with pytest.raises(e2b.InvalidArgumentException):
        await AsyncSandbox.pause(SID, mode="half")
    assert fake.recorder.requests == []


def test_default_template_of_a_subclass_is_used(fake: FakeE2B) -> None:
    class Custom(Sandbox):
        default_template = "my-template"

    Custom.create()
    creates = [r for r in fake.recorder.requests if r["path"] == "/v2/sandboxes"]
    assert creates[-1]["body"]["templateID"] == "my-template"


def test_file_urls_are_signed_as_e2b_signs_them(fake: FakeE2B) -> None:
    import base64
    import hashlib
    import urllib.parse

    s = Sandbox.create()
    url = s.download_url("/home/user/a b.txt")
    parsed = urllib.parse.urlparse(url)
    q = dict(urllib.parse.parse_qsl(parsed.query))
    assert parsed.path == "/files" and q["path"] == "/home/user/a b.txt"
    from fake_e2b import SANDBOX

    token = SANDBOX["envdAccessToken"]
    raw = f"/home/user/a b.txt:read::{token}".encode()
    assert q["signature"] == "v1_" + base64.b64encode(hashlib.sha256(raw).digest()).rstrip(b"=").decode()
    up = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(s.upload_url("/x", user="root", use_signature_expiration=60)).query))
    assert up["username"] == "root" and int(up["signature_expiration"]) > 0 and up["signature"].startswith("v1_")
    assert s.envd_api_url == fake.url
    assert s.connection_config.api_url == fake.url
