"""Our SDK's ``Volume`` / ``AsyncVolume`` against a real sandboxd (embedded default): the REST calls,
the content API (files, directories, metadata, every ``read_file`` format), E2B's exceptions, the
client factory, and ``volume_mounts`` refused by sandboxd rather than dropped."""

import asyncio
import io
import uuid

import pytest

from e2b import (
    E2B,
    AsyncVolume,
    AuthenticationException,
    InvalidArgumentException,
    Sandbox,
    SandboxException,
    Volume,
    VolumeAndToken,
    VolumeEntryStat,
    VolumeException,
    VolumeFileType,
    VolumeInfo,
    VolumeNotFoundException,
    VolumePathNotFoundException,
)

from conftest import Server


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_volume_lifecycle(sandboxd: Server):
    name = unique("py-vol")
    vol = Volume.create(name)
    assert vol.name == name and len(vol.token or "") == 64
    info = Volume.get_info(vol.volume_id)
    assert info == VolumeAndToken(volume_id=vol.volume_id, name=name, token=vol.token)
    assert VolumeInfo(vol.volume_id, name) in Volume.list()
    assert Volume.connect(vol.volume_id).token == vol.token
    with pytest.raises(VolumeException, match="409: a volume named"):
        Volume.create(name)
    assert Volume.destroy(vol.volume_id) is True
    assert Volume.destroy(vol.volume_id) is False
    with pytest.raises(VolumeNotFoundException, match=f"Volume {vol.volume_id} not found"):
        Volume.get_info(vol.volume_id)


def test_files_and_directories(sandboxd: Server):
    vol = Volume.create(unique("files"))
    d = vol.make_dir("/a/b", force=True, mode=0o750)
    assert isinstance(d, VolumeEntryStat) and d.type == VolumeFileType.DIRECTORY and d.mode == 0o750
    with pytest.raises(VolumePathNotFoundException, match="Path /x/y not found"):
        vol.make_dir("/x/y")
    st = vol.write_file("/a/b/f.txt", "hello", mode=0o600)
    assert (st.type, st.size, st.mode, st.path) == (VolumeFileType.FILE, 5, 0o600, "/a/b/f.txt")
    assert vol.read_file("/a/b/f.txt") == "hello"
    assert vol.read_file("/a/b/f.txt", format="bytes") == b"hello"
    assert b"".join(vol.read_file("/a/b/f.txt", format="stream")) == b"hello"
    vol.write_file("/io.bin", io.BytesIO(b"\x00\x01"))
    vol.write_file("/text.txt", io.StringIO("from text io"))
    assert vol.read_file("/text.txt") == "from text io"
    assert [e.path for e in vol.list("/", depth=3)] == ["/a", "/a/b", "/a/b/f.txt", "/io.bin", "/text.txt"]
    assert vol.get_info("/io.bin").size == 2
    assert vol.exists("/io.bin") and not vol.exists("/nope")
    assert vol.update_metadata("/a/b/f.txt", mode=0o644).mode == 0o644
    with pytest.raises(VolumeException, match="'\\.\\.'"):
        vol.read_file("/../etc/passwd")
    with pytest.raises(InvalidArgumentException):
        vol.read_file("/io.bin", format="stream", stream_idle_timeout=5)
    with pytest.raises(TypeError, match="unexpected keyword argument 'tokn'"):
        vol.read_file("/io.bin", tokn="x")
    vol.remove("/a")
    assert not vol.exists("/a")
    other = Volume.create(unique("other"))
    with pytest.raises(AuthenticationException):
        vol.read_file("/io.bin", token=other.token)
    # A handle made locally (no request) works with the token alone.
    local = Volume(vol.volume_id, vol.name, token=vol.token)
    assert local.read_file("/io.bin", format="bytes") == b"\x00\x01"
    Volume.destroy(vol.volume_id)
    Volume.destroy(other.volume_id)


def test_async_volume(sandboxd: Server):
    async def main():
        vol = await AsyncVolume.create(unique("async"))
        await vol.write_file("/x.txt", "async", force=True)
        assert await vol.read_file("/x.txt") == "async"
        chunks = [c async for c in await vol.read_file("/x.txt", format="stream")]
        assert b"".join(chunks) == b"async"
        assert [e.name for e in await vol.list("/")] == ["x.txt"]
        assert (await AsyncVolume.get_info(vol.volume_id)).token == vol.token
        assert await AsyncVolume.destroy(vol.volume_id)

    asyncio.run(main())


def test_client_binding_and_mounts(sandboxd: Server):
    bad = E2B(api_url=sandboxd.url, api_key="e2b_" + "0" * 40)
    with pytest.raises(AuthenticationException):
        bad.Volume.list()
    good = E2B(api_url=sandboxd.url, api_key=sandboxd.api_key, sandbox_url=sandboxd.url)
    vol = good.Volume.create(unique("bound"))
    assert isinstance(vol, Volume)
    # Mounted by sandboxd: what the sandbox writes there is in the volume.
    sbx = good.Sandbox.create(volume_mounts={"/mnt/data": vol})
    sbx.files.write("/mnt/data/hello.txt", "Hello, world!")
    assert vol.read_file("/hello.txt") == "Hello, world!"
    assert sbx.get_info().volume_mounts == [{"name": vol.name, "path": "/mnt/data"}]
    by_name = good.Sandbox.create(volume_mounts={"/data": vol.name})
    assert by_name.files.read("/data/hello.txt") == "Hello, world!"
    with pytest.raises(SandboxException, match='volume "no-such-volume" not found'):
        good.Sandbox.create(volume_mounts={"/mnt/x": "no-such-volume"})
    sbx.kill()
    by_name.kill()
    assert good.Volume.destroy(vol.volume_id)
