"""Issue 10, signed file URLs: `download_url` / `upload_url` of secure sandboxes, through the
official SDKs, against a real sandboxd and real microVMs.

The URLs are used as an SDK user would: fetched by a plain HTTP client with no API key and no
envd token. With `E2B_SANDBOX_URL` set the SDK makes them `<sandboxd>/files?…` (no sandbox in
the URL: sandboxd finds the sandbox whose token signed it); with a domain they are
`49983-<id>.<domain>`, which the test reaches by sending that Host header to sandboxd, as a
wildcard DNS name in front of it would.
"""

import http.client
import time
import urllib.parse
import uuid

from e2b import Sandbox
from e2b.sandbox.signature import get_signature

from official_js import run_js


def _fetch(server_url, url, method="GET", body=None, headers=None, host=None):
    """Sends `url`'s path and query to sandboxd (optionally under another Host)."""
    parts = urllib.parse.urlsplit(url)
    srv = urllib.parse.urlsplit(server_url)
    conn = http.client.HTTPConnection(srv.hostname, srv.port, timeout=60)
    try:
        hdrs = dict(headers or {})
        if host:
            hdrs["Host"] = host
        conn.request(method, f"{parts.path}?{parts.query}", body=body, headers=hdrs)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def _multipart(name: str, data: bytes):
    boundary = uuid.uuid4().hex
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def _with_param(url, **changes):
    parts = urllib.parse.urlsplit(url)
    q = dict(urllib.parse.parse_qsl(parts.query))
    for k, v in changes.items():
        if v is None:
            q.pop(k, None)
        else:
            q[k] = v
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(q)))


def test_signed_download_and_upload_urls(sandbox, sandboxd):
    path = "/home/user/signed.txt"
    sandbox.files.write(path, "signed content")
    url = sandbox.download_url(path)
    assert "signature=v1_" in url and sandbox.sandbox_id not in urllib.parse.urlsplit(url).netloc

    # Through sandboxd's own address (E2B_SANDBOX_URL), no key, no token.
    assert _fetch(sandboxd, url) == (200, b"signed content")
    # Through the host form a wildcard DNS name gives.
    host = f"49983-{sandbox.sandbox_id}.localhost"
    assert _fetch(sandboxd, url, host=host) == (200, b"signed content")

    # With an expiry still ahead.
    assert _fetch(sandboxd, sandbox.download_url(path, use_signature_expiration=120)) == (200, b"signed content")

    # Upload through a signed URL, read back through the SDK.
    up = sandbox.upload_url("/home/user/uploaded.txt")
    body, headers = _multipart("/home/user/uploaded.txt", b"via signed url")
    status, _ = _fetch(sandboxd, up, method="POST", body=body, headers=headers)
    assert status == 200
    assert sandbox.files.read("/home/user/uploaded.txt") == "via signed url"
    # A read signature does not allow a write of the same path, nor the other way round.
    read_sig = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))["signature"]
    status, _ = _fetch(sandboxd, _with_param(up, signature=read_sig, path=path), method="POST", body=body, headers=headers)
    assert status == 401
    assert sandbox.files.read(path) == "signed content"


def test_wrong_missing_and_expired_signatures_are_401(sandbox, sandboxd):
    path = "/home/user/secret.txt"
    sandbox.files.write(path, "TOPSECRET-42")
    host = f"49983-{sandbox.sandbox_id}.localhost"
    good = sandbox.download_url(path)
    forged = _with_param(good, signature=good.split("signature=")[1][:-4] + "AAAA")
    for target in (None, host):
        status, body = _fetch(sandboxd, forged, host=target)
        assert status == 401, (target, body)
        assert b"TOPSECRET" not in body
    # No signature at all: envd wants its token.
    status, body = _fetch(sandboxd, _with_param(good, signature=None), host=host)
    assert status == 401 and b"TOPSECRET" not in body

    # Expired: signed with an expiry 30 s in the past (what the SDK computes for it).
    sig = get_signature(path, "read", None, sandbox._envd_access_token, -30)
    expired = _with_param(good, signature=sig["signature"], signature_expiration=str(sig["expiration"]))
    for target in (None, host):
        status, body = _fetch(sandboxd, expired, host=target)
        assert status == 401, (target, body)
        assert b"TOPSECRET" not in body
    # An expiry moved into the future no longer matches the signature.
    moved = _with_param(expired, signature_expiration=str(int(time.time()) + 3600))
    assert _fetch(sandboxd, moved, host=host)[0] == 401

    # Another sandbox's token signs nothing of this one.
    other = Sandbox.create("base", timeout=120)
    try:
        sig = get_signature(path, "read", None, other._envd_access_token)
        status, body = _fetch(sandboxd, _with_param(good, signature=sig["signature"]), host=host)
        assert status == 401 and b"TOPSECRET" not in body
        status, body = _fetch(sandboxd, _with_param(good, signature=sig["signature"]))
        assert status == 404 and b"TOPSECRET" not in body  # routed to `other`, which has no such file
    finally:
        other.kill()


def test_js_sdk_signed_urls(sandbox, sandboxd):
    """The JS SDK signs asynchronously (Web Crypto) and names the options differently."""
    sandbox.files.write("/home/user/js.txt", "from js")
    out = run_js(f"""
import {{ Sandbox }} from 'e2b'
const sbx = await Sandbox.connect({sandbox.sandbox_id!r})
const url = await sbx.downloadUrl('/home/user/js.txt', {{ useSignatureExpiration: 60 }})
const text = await (await fetch(url)).text()
const up = await sbx.uploadUrl('/home/user/js-up.txt')
const form = new FormData()
form.append('file', new Blob(['uploaded by js']), '/home/user/js-up.txt')
const status = (await fetch(up, {{ method: 'POST', body: form }})).status
console.log(JSON.stringify({{ url, text, status }}))
""")
    assert "signature_expiration=" in out["url"]
    assert out["text"] == "from js"
    assert out["status"] == 200
    assert sandbox.files.read("/home/user/js-up.txt") == "uploaded by js"
