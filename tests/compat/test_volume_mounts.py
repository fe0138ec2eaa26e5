"""Volumes mounted into sandboxes (`volume_mounts` / `volumeMounts`) through the official SDKs:
the guest sees the volume's files live at the mount path, writes land in the volume (visible
through the volume content API and in every other sandbox that mounts it), and the mount is
part of the sandbox: it survives pause/resume and a sandboxd restart, and comes with every
sandbox made from a snapshot of it (the guest's memory holds the mount)."""

import hashlib
import json
import urllib.error
import urllib.request

import pytest
from conftest import wait_until
from official_js import run_js


@pytest.fixture
def srv(volume_server):
    return volume_server


def opts(server):
    return server.opts


def detail(server, sandbox_id):
    req = urllib.request.Request(f"{server.url}/sandboxes/{sandbox_id}", headers={"X-API-KEY": server.key})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def sh(sbx, cmd, user="user"):
    return sbx.commands.run(cmd, user=user, timeout=120).stdout


def test_the_documented_sample_and_live_sharing(srv, base_template):
    from e2b import Sandbox, Volume

    vol = Volume.create("my-volume", **opts(srv))
    vol.write_file("/seed.txt", "from the volume API")
    sbx = Sandbox.create(base_template, volume_mounts={"/mnt/my-data": vol}, **opts(srv))
    other = Sandbox.create(base_template, volume_mounts={"/data": "my-volume"}, **opts(srv))

    # The documentation's sample: files written at the mount path are persisted in the volume.
    sbx.files.write("/mnt/my-data/hello.txt", "Hello, world!")
    assert vol.read_file("/hello.txt") == "Hello, world!"
    assert sbx.files.read("/mnt/my-data/seed.txt") == "from the volume API"
    assert detail(srv, sbx.sandbox_id)["volumeMounts"] == [{"name": "my-volume", "path": "/mnt/my-data"}]
    assert detail(srv, other.sandbox_id)["volumeMounts"] == [{"name": "my-volume", "path": "/data"}]
    assert sh(sbx, "grep ' /mnt/my-data ' /proc/mounts").startswith(f"e2b-volume-{vol.volume_id} /mnt/my-data fuse ")

    # Ordinary tools work on it: directories, renames, symlinks, appends, chmod, truncation.
    out = sh(sbx, "cd /mnt/my-data && mkdir -p d/e && echo one > d/e/f && mv d/e/f d/e/g && "
                  "ln -s e/g d/link && echo two >> d/link && chmod 640 d/e/g && cat d/link && "
                  "truncate -s 3 d/e/g && stat -c '%a %U %s' d/e/g && readlink d/link")
    assert out.splitlines() == ["one", "two", "640 user 3", "e/g"]
    st = vol.get_info("/d/e/g")
    assert (st.size, st.mode, st.uid) == (3, 0o640, 1000)
    assert vol.read_file("/d/e/g") == "one"

    # A file bigger than one request, byte for byte.
    out = sh(sbx, "head -c 3000000 /dev/urandom > /mnt/my-data/big && sha256sum /mnt/my-data/big")
    on_host = hashlib.sha256((srv.data / "volumes" / vol.volume_id / "data" / "big").read_bytes()).hexdigest()
    assert out.split()[0] == on_host

    # The other sandbox sees it all, and its writes come back (the kernel caches names 1 s).
    assert other.files.read("/data/hello.txt") == "Hello, world!"
    other.files.write("/data/from-other.txt", "hi from the other")
    wait_until(lambda: sh(sbx, "cat /mnt/my-data/from-other.txt 2>/dev/null"), 10, "the first sandbox to see the file")
    vol.remove("/seed.txt")
    wait_until(lambda: "gone" in sh(sbx, "test -e /mnt/my-data/seed.txt || echo gone"), 10, "the removal to show")

    # Removing and renaming inside the mount reach the volume.
    sh(sbx, "rm -r /mnt/my-data/d && mv /mnt/my-data/hello.txt /mnt/my-data/hi.txt")
    assert sorted(e.name for e in vol.list("/")) == ["big", "from-other.txt", "hi.txt"]
    sbx.kill()
    other.kill()
    # The volume outlives its sandboxes.
    assert vol.read_file("/hi.txt") == "Hello, world!"


def test_mounts_survive_snapshots_pause_and_a_sandboxd_restart(srv, base_template):
    from e2b import Sandbox, Volume

    vol = Volume.create("kept", **opts(srv))
    sbx = Sandbox.create(base_template, volume_mounts={"/mnt/v": vol}, timeout=600, **opts(srv))
    # A process holding its working directory on the volume, and a file written before.
    sbx.commands.run("cd /mnt/v && sleep 3600", background=True)
    sh(sbx, "echo before > /mnt/v/before.txt")

    snap = sbx.create_snapshot()
    vol.write_file("/after.txt", "written after the snapshot")
    clone = Sandbox.create(snap.snapshot_id, **opts(srv))
    # The clone's guest already has the mount (from the snapshot's memory): it is served again.
    assert detail(srv, clone.sandbox_id)["volumeMounts"] == [{"name": "kept", "path": "/mnt/v"}]
    assert sh(clone, "cat /mnt/v/before.txt /mnt/v/after.txt").splitlines() == ["before", "written after the snapshot"]
    sh(clone, "echo from-clone > /mnt/v/clone.txt")
    assert vol.read_file("/clone.txt") == "from-clone\n"
    assert "/mnt/v" in sh(clone, "readlink /proc/$(pgrep -x sleep)/cwd")
    # The source goes on using it too.
    assert sh(sbx, "cat /mnt/v/clone.txt") == "from-clone\n"

    assert sbx.pause() is True
    vol.write_file("/while-paused.txt", "p")
    resumed = Sandbox.connect(sbx.sandbox_id, **opts(srv))
    assert sh(resumed, "cat /mnt/v/while-paused.txt") == "p"

    # A crashed sandboxd leaves the VMs running; the restarted one serves their volumes again.
    srv.kill9()
    srv.start()
    vol.write_file("/after-restart.txt", "r")
    assert sh(resumed, "cat /mnt/v/after-restart.txt") == "r"
    assert sh(clone, "cat /mnt/v/after-restart.txt") == "r"
    resumed.kill()
    clone.kill()


def test_bad_mounts_are_refused_and_start_nothing(srv, base_template):
    from e2b import Sandbox, Volume
    from e2b.exceptions import SandboxException

    vol = Volume.create("one", **opts(srv))
    Volume.create("two", **opts(srv))
    for mounts, message in [
        ({"/mnt/x": "missing"}, 'volume "missing" not found'),
        ({"/": vol}, "must be absolute, other than /"),
        ({"/mnt/../etc": vol}, "without '.', '..'"),
        ({"relative": vol}, "must be absolute"),
        ({"/proc/x": vol}, "cannot be mounted"),
        ({"/mnt/a": "one", "/mnt/a/b": "two"}, "paths overlap"),
    ]:
        with pytest.raises(SandboxException, match=message):
            Sandbox.create(base_template, volume_mounts=mounts, **opts(srv))
    assert Sandbox.list(**opts(srv)).next_items() == []


def test_a_symlink_in_a_volume_never_leads_out_of_it_on_the_host(srv, base_template):
    from e2b import Sandbox, Volume

    vol = Volume.create("links", **opts(srv))
    data = srv.data / "volumes" / vol.volume_id / "data"
    # Planted on the host: a link to the host's root. The guest sees a symlink and resolves it
    # in its own file system; the host never follows it.
    (data / "escape").symlink_to("/")
    sbx = Sandbox.create(base_template, volume_mounts={"/mnt/l": vol}, **opts(srv))
    assert sh(sbx, "readlink /mnt/l/escape") == "/\n"
    guest_hostname = sh(sbx, "cat /etc/hostname")
    assert sh(sbx, "cat /mnt/l/escape/etc/hostname") == guest_hostname
    sbx.kill()


def test_the_official_js_sdk(srv, base_template):
    out = run_js(f"""
import {{ Sandbox, Volume }} from 'e2b'
const volume = await Volume.create('js-mounted')
const sandbox = await Sandbox.create('{base_template}', {{ volumeMounts: {{ '/mnt/my-data': volume }} }})
await sandbox.files.write('/mnt/my-data/hello.txt', 'Hello, world!')
const byName = await Sandbox.create('{base_template}', {{ volumeMounts: {{ '/mnt/my-data': 'js-mounted' }} }})
const seen = await byName.files.read('/mnt/my-data/hello.txt')
const stored = await volume.readFile('/hello.txt')
await sandbox.kill(); await byName.kill()
console.log(JSON.stringify({{ seen, stored }}))
""", server=srv, env={"E2B_VOLUME_API_URL": srv.url})
    assert out == {"seen": "Hello, world!", "stored": "Hello, world!"}
