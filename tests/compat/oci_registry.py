"""A throwaway OCI registry and a small test image, for the OCI image tests. No Docker daemon.

`Registry` runs Debian's `docker-registry` (the reference registry server) on a free loopback
port with its own config and storage under a temporary directory (never the system service),
optionally with htpasswd (basic) auth. `build_image` makes a busybox-only image with `umoci`
(two layers: the second deletes a file of the first, i.e. holds a whiteout; an Env and a
WorkingDir in its config) and `Registry.push` copies it in with `skopeo`, as OCI or as Docker
v2 schema 2. Tools: `scripts/install-deps.sh` (docker-registry, skopeo, umoci, apache2-utils).
"""

import base64
import http.server
import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

OS_RELEASE = 'PRETTY_NAME="sandboxd OCI test image (busybox)"\nNAME="sandboxd-oci-test"\nID=sandboxd-oci-test\n'
IMAGE_ENV = {"FOO": "from-the-image", "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
IMAGE_WORKDIR = "/srv/app"
LAYER1_ONLY = "/etc/layer1-only"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(*cmd, **kw):
    r = subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stdout[-3000:]}")
    return r.stdout


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """Docker Hub's auth scheme in miniature: the registry answers `WWW-Authenticate: Bearer
    realm=...`, and this server trades basic credentials (or none) for a JWT the registry
    trusts (RS256, signed with `openssl`, its certificate in the `x5c` header). Valid
    credentials get the actions asked for; anonymous callers get a token with no access; wrong
    credentials get a 401."""

    SERVICE = "sandboxd-test-registry"
    ISSUER = "sandboxd-test-token-issuer"

    def __init__(self, root: Path, users: dict):
        root.mkdir(parents=True, exist_ok=True)
        self.key, self.cert = root / "token.key", root / "token.pem"
        _run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.key, "-out", self.cert,
             "-days", "2", "-subj", "/CN=sandboxd-test-token")
        der = subprocess.run(["openssl", "x509", "-in", str(self.cert), "-outform", "DER"],
                             stdout=subprocess.PIPE, check=True).stdout
        self.x5c = base64.b64encode(der).decode()
        self.users = users
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
                auth = self.headers.get("Authorization", "")
                known = None
                if auth.startswith("Basic "):
                    user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                    if outer.users.get(user) != password:
                        self.send_response(401)
                        self.send_header("Content-Type", "application/json")
                        self.end_headers()
                        self.wfile.write(b'{"details":"incorrect username or password"}')
                        return
                    known = user
                access = []
                for scope in q.get("scope", []):
                    kind, name, actions = scope.split(":")
                    if known:
                        access.append({"type": kind, "name": name, "actions": actions.split(",")})
                body = json.dumps({"token": outer.token(known or "", access), "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.realm = f"http://127.0.0.1:{self.server.server_address[1]}/token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, subject: str, access: list) -> str:
        now = int(time.time())
        header = {"alg": "RS256", "typ": "JWT", "x5c": [self.x5c]}
        claims = {"iss": self.ISSUER, "sub": subject, "aud": self.SERVICE, "exp": now + 300, "nbf": now - 10,
                  "iat": now, "jti": _b64url(now.to_bytes(8, "big") + subject.encode()), "access": access}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(self.key)], input=signing_input.encode(),
                             stdout=subprocess.PIPE, check=True).stdout
        return f"{signing_input}.{_b64url(sig)}"

    def stop(self):
        self.server.shutdown()


class Registry:
    def __init__(self, root: Path, users: dict | None = None, token: TokenServer | None = None):
        self.root = root
        self.port = _free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.users = users or (token.users if token else {})
        root.mkdir(parents=True, exist_ok=True)
        auth = ""
        if token:
            auth = (f"auth:\n  token:\n    realm: {token.realm}\n    service: {token.SERVICE}\n"
                    f"    issuer: {token.ISSUER}\n    rootcertbundle: {token.cert}\n")
        elif self.users:
            lines = [_run("htpasswd", "-Bbn", u, p).strip() for u, p in self.users.items()]
            (root / "htpasswd").write_text("\n".join(lines) + "\n")
            auth = f"auth:\n  htpasswd:\n    realm: sandboxd-test\n    path: {root / 'htpasswd'}\n"
        (root / "config.yml").write_text(
            "version: 0.1\nlog:\n  level: warn\n"
            f"storage:\n  filesystem:\n    rootdirectory: {root / 'storage'}\n"
            f"http:\n  addr: {self.host}\n{auth}")
        self.log = open(root / "registry.log", "w")
        self.proc = subprocess.Popen(["docker-registry", "serve", str(root / "config.yml")],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://{self.host}/v2/", timeout=2)
                break
            except urllib.error.HTTPError:
                break  # 401 with auth: up
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"registry did not start: {(root / 'registry.log').read_text()[-2000:]}")
                time.sleep(0.1)

    def push(self, layout: str, repo: str, docker_format: bool = False) -> str:
        """Copies `layout` (`oci:DIR:TAG`) to `repo` (`name:tag`); returns the reference."""
        ref = f"{self.host}/{repo}"
        args = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false"]
        if docker_format:
            args += ["--format", "v2s2"]
        if self.users:
            user, password = next(iter(self.users.items()))
            args += ["--dest-creds", f"{user}:{password}"]
        _run(*args, layout, f"docker://{ref}", timeout=300)
        return ref

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def build_image(work: Path) -> str:
    """A busybox-only image in an OCI layout under `work`; returns `oci:DIR:TAG`."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    layout, bundle = work / "layout", work / "bundle"
    _run("umoci", "init", "--layout", layout)
    _run("umoci", "new", "--image", f"{layout}:v1")
    _run("umoci", "unpack", "--image", f"{layout}:v1", bundle)
    rootfs = bundle / "rootfs"
    # Layer 1: busybox and its applets, the os-release, root's account, a file layer 2 deletes.
    (rootfs / "bin").mkdir(parents=True)
    shutil.copy2(busybox, rootfs / "bin" / "busybox")
    for applet in _run(busybox, "--list").split():
        if applet != "busybox" and not (rootfs / "bin" / applet).exists():
            (rootfs / "bin" / applet).symlink_to("busybox")
    (rootfs / "etc").mkdir()
    (rootfs / "etc" / "os-release").write_text(OS_RELEASE)
    (rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (rootfs / "etc" / "group").write_text("root:x:0:\n")
    (rootfs / LAYER1_ONLY.lstrip("/")).write_text("deleted by layer 2\n")
    _run("umoci", "repack", "--image", f"{layout}:v1", bundle)
    # Layer 2 (repack diffs against the bundle's unpacked state: unpack layer 1 afresh): the
    # whiteout, and the working directory's content.
    bundle = work / "bundle2"
    _run("umoci", "unpack", "--image", f"{layout}:v1", bundle)
    rootfs = bundle / "rootfs"
    (rootfs / LAYER1_ONLY.lstrip("/")).unlink()
    app = rootfs / IMAGE_WORKDIR.lstrip("/")
    app.mkdir(parents=True)
    (app / "hello.txt").write_text("hello from layer 2\n")
    _run("umoci", "repack", "--image", f"{layout}:v1", bundle)
    env = [a for k, v in IMAGE_ENV.items() for a in ("--config.env", f"{k}={v}")]
    _run("umoci", "config", "--image", f"{layout}:v1", *env, "--config.workingdir", IMAGE_WORKDIR,
         "--os", "linux", "--architecture", "amd64")
    # The same image claiming to be arm64 (refused: sandboxes are x86_64).
    _run("umoci", "config", "--image", f"{layout}:v1", "--tag", "arm64", "--architecture", "arm64")
    return f"oci:{layout}:v1"
