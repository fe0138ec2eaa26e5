"""Issue 11 item 4: OCI images as template bases, no Docker daemon. Real microVMs.

A throwaway registry on a loopback port (Debian's docker-registry) serves a busybox-only image
made by the test with umoci (layer 2 deletes a file of layer 1; Env and WorkingDir in its
config); `sandboxd template build NAME --from-image REF` pulls, unpacks, converts, boots and
snapshots it, and the official SDK runs commands in a sandbox created from it.
"""

import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, templates_dir
from oci_registry import IMAGE_ENV, IMAGE_WORKDIR, LAYER1_ONLY, OS_RELEASE, Registry, TokenServer, build_image

USERS = {"e2b-user": "s3cret-pass"}


@pytest.fixture(scope="module")
def oci(tmp_path_factory):
    for tool in ("docker-registry", "skopeo", "umoci", "htpasswd"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} missing: run scripts/install-deps.sh")
    work = tmp_path_factory.mktemp("oci")
    images_before, blobs_before = set(_images()), set(_blobs())
    open_reg = Registry(work / "registry")
    auth_reg = Registry(work / "registry-auth", users=USERS)
    tokens = TokenServer(work / "token", USERS)
    token_reg = Registry(work / "registry-token", token=tokens)
    try:
        layout = build_image(work / "image")
        yield {
            "ref": open_reg.push(layout, "sandboxd-test/busybox:v1"),
            "docker_ref": open_reg.push(layout, "sandboxd-test/busybox:v1-docker", docker_format=True),
            "basic": auth_reg.push(layout, "private/busybox:v1"),
            "token": token_reg.push(layout, "private/busybox:v1"),
            # As a Docker Hub official image would sit on a mirror (`library/`).
            "mirrored": open_reg.push(layout, "library/sandboxd-busybox:v1"),
            "arm64_ref": open_reg.push(layout.replace(":v1", ":arm64"), "sandboxd-test/busybox:arm64"),
            "host": open_reg.host,
        }
    finally:
        for r in (open_reg, auth_reg, token_reg):
            r.stop()
        tokens.stop()
        # Every run's image has a new digest (fresh timestamps): drop the converted images this
        # module made, so the shared templates dir does not grow run after run.
        for image in set(_images()) - images_before:
            _remove_converted(image)
        for blob in set(_blobs()) - blobs_before:
            blob.unlink(missing_ok=True)


def _blobs() -> list:
    d = templates_dir() / ".oci" / "blobs" / "sha256"
    return list(d.iterdir()) if d.is_dir() else []


def _images() -> list:
    d = templates_dir() / ".oci" / "images"
    return [p for p in d.iterdir() if not p.name.startswith(".")] if d.is_dir() else []


def _qcow2_backing(path: Path) -> Path | None:
    with open(path, "rb") as f:
        header = f.read(20)
        offset, size = int.from_bytes(header[8:16], "big"), int.from_bytes(header[16:20], "big")
        if not offset:
            return None
        f.seek(offset)
        return path.parent / f.read(size).decode()


def _remove_converted(image: Path):
    """A converted image and its two disk layers (the frozen one and its rootfs base)."""
    try:
        layer = Path(json.loads((image / "meta.json").read_text())["disk_layer"])
        backing = _qcow2_backing(layer)
        for p in (layer, backing):
            if p is not None and p.parent.name == ".layers":
                p.unlink(missing_ok=True)
    finally:
        shutil.rmtree(image, ignore_errors=True)


def build(name: str, ref: str, env: dict | None = None) -> subprocess.CompletedProcess:
    binary = os.environ.get("SANDBOXD_BIN", str(ROOT / "target" / "debug" / "sandboxd"))
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SANDBOXD_REGISTRY_")}
    full_env.update(env or {})
    return subprocess.run(
        [binary, "template", "build", name, "--from-image", ref, "--templates-dir", str(templates_dir())],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600, env=full_env)


def remove_template(name: str):
    shutil.rmtree(templates_dir() / name, ignore_errors=True)


def listing() -> set:
    """What a build may leave in the templates dir: templates, converted images, blobs, layers."""
    t = templates_dir()
    found = {p.name for p in t.iterdir()}
    for sub in (".oci", ".oci/images", ".oci/blobs/sha256", ".layers"):
        if (t / sub).is_dir():
            found |= {f"{sub}/{p.name}" for p in (t / sub).iterdir()}
    return found


def test_image_template_boots_and_runs_commands(sandboxd, base_template, oci):
    from e2b import Sandbox

    name = "oci-test-busybox"
    remove_template(name)
    r = build(name, oci["ref"])
    assert r.returncode == 0, r.stdout[-4000:]
    assert "2 layers" in r.stdout, r.stdout
    # What the template builder gets from the image config (`image_base`), as recorded.
    about = json.loads((templates_dir() / name / "image.json").read_text())
    assert about["env"] == [list(kv) for kv in IMAGE_ENV.items()] and about["workdir"] == IMAGE_WORKDIR
    assert about["digest"].startswith("sha256:") and about["user"] is None
    try:
        sbx = Sandbox.create(name, timeout=120)
        try:
            assert sbx.commands.run("cat /etc/os-release").stdout == OS_RELEASE
            # Layer 2's whiteout removed layer 1's file; layer 2's own file is there.
            gone = sbx.commands.run(f"test -e {LAYER1_ONLY} && echo present || echo gone")
            assert gone.stdout.strip() == "gone"
            assert sbx.files.read(f"{IMAGE_WORKDIR}/hello.txt") == "hello from layer 2\n"
            # The image's Env and WorkingDir hold for commands; the default user is E2B's.
            r = sbx.commands.run('echo "$FOO|$PATH|$(pwd)|$(whoami)|$(id -u)"')
            assert r.stdout.strip() == f"{IMAGE_ENV['FOO']}|{IMAGE_ENV['PATH']}|{IMAGE_WORKDIR}|user|1000"
            assert sbx.commands.run("whoami", user="root").stdout.strip() == "root"
            # Sandbox env vars still merge over the image's.
            assert sbx.commands.run("echo $FOO", envs={"FOO": "mine"}).stdout.strip() == "mine"
        finally:
            sbx.kill()
    finally:
        remove_template(name)


def test_second_build_is_cached_and_docker_media_types_work(oci):
    name = "oci-test-cached"
    try:
        assert build(name, oci["ref"]).returncode == 0  # converted here unless an earlier test did
        r = build(name, oci["ref"])
        assert r.returncode == 0, r.stdout[-4000:]
        assert "converted image cached" in r.stdout and "downloaded" not in r.stdout, r.stdout
        # The same layers under a Docker v2 schema 2 manifest: a new manifest digest, so a new
        # conversion, but no layer is downloaded again.
        r = build(name, oci["docker_ref"])
        assert r.returncode == 0, r.stdout[-4000:]
        assert r.stdout.count(": cached (") == 2 and "downloaded" not in r.stdout, r.stdout
        assert (templates_dir() / name / "meta.json").is_file()
    finally:
        remove_template(name)


@pytest.mark.parametrize("auth", ["basic", "token"])
def test_registry_credentials(oci, auth):
    """Basic auth, and Docker Hub's bearer-token flow (the credentials go to the realm the
    registry names, which issues a token)."""
    name = "oci-test-private"
    try:
        creds = {"SANDBOXD_REGISTRY_USERNAME": "e2b-user", "SANDBOXD_REGISTRY_PASSWORD": "s3cret-pass"}
        r = build(name, oci[auth], creds)
        assert r.returncode == 0, r.stdout[-4000:]
    finally:
        remove_template(name)


def test_registry_mirror_serves_docker_hub_references(oci):
    """`sandboxd-busybox:v1` is Docker Hub's `library/sandboxd-busybox:v1`: fetched from the
    mirror (this host has no Docker Hub), as Docker's registry-mirrors would."""
    name = "oci-test-mirror"
    try:
        r = build(name, "sandboxd-busybox:v1", {"SANDBOXD_REGISTRY_MIRROR": f"http://{oci['host']}"})
        assert r.returncode == 0, r.stdout[-4000:]
        assert f"at http://{oci['host']}" in r.stdout, r.stdout
    finally:
        remove_template(name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("case", ["missing-tag", "missing-repo", "wrong-password-basic", "wrong-password-token",
                                  "anonymous-basic", "anonymous-token", "unreachable", "arm64", "mirror-lacks-it"])
def test_bad_images_fail_clearly_and_leave_nothing(oci, case):
    name = "oci-test-bad"
    wrong = {"SANDBOXD_REGISTRY_USERNAME": "e2b-user", "SANDBOXD_REGISTRY_PASSWORD": "wrong"}
    ref, env, expect = {
        "missing-tag": (oci["ref"].replace(":v1", ":no-such-tag"), {}, "not found in registry"),
        "missing-repo": (f"{oci['host']}/no/such-image:v1", {}, "not found in registry"),
        "wrong-password-basic": (oci["basic"], wrong, "refused the credentials"),
        "wrong-password-token": (oci["token"], wrong, "refused the credentials"),
        "anonymous-basic": (oci["basic"], {}, "refused anonymous access"),
        "anonymous-token": (oci["token"], {}, "refused anonymous access"),
        "unreachable": (f"127.0.0.1:{free_port()}/sandboxd-test/busybox:v1", {}, "cannot reach registry"),
        "arm64": (oci["arm64_ref"], {}, "built for linux/arm64"),
        "mirror-lacks-it": ("ubuntu:22.04", {"SANDBOXD_REGISTRY_MIRROR": f"http://{oci['host']}"},
                            "not found in registry http://" + oci["host"]),
    }[case]
    before = listing()
    r = build(name, ref, env)
    assert r.returncode != 0, r.stdout
    assert expect in r.stdout and ref in r.stdout, r.stdout
    assert listing() == before


def test_an_image_whose_init_cannot_run_fails_at_once(oci):
    """A guest that panics while booting (here: an "envd" that is a dynamically linked program,
    which a busybox image cannot execute, so the kernel has no init) fails the build as soon as
    its console says so, with the panic in the error, instead of at the 300 s boot deadline."""
    import time

    name = "oci-test-panic"
    before = listing()
    t0 = time.monotonic()
    r = build(name, oci["ref"], {"SANDBOXD_ENVD": shutil.which("true") or "/bin/true"})
    elapsed = time.monotonic() - t0
    assert r.returncode != 0, r.stdout
    assert "Kernel panic" in r.stdout and "while waiting for envd" in r.stdout, r.stdout[-3000:]
    assert elapsed < 120, f"noticed only after {elapsed:.0f} s"
    assert name not in listing(), "nothing half-built is listed"
