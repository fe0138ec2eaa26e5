"""E2B's volumes through the official SDKs (Python `Volume` / `AsyncVolume`, JS `Volume`): the REST
half (create, connect, list, get_info, destroy) and the content API (files, directories,
metadata) with the volume's token. The official SDKs find the content API at
`E2B_VOLUME_API_URL` (sandboxd serves it on its own URL)."""

import asyncio
import io
import json
import os
import urllib.error
import urllib.request

import pytest

from official_js import run_js


@pytest.fixture
def srv(volume_server):
    return volume_server


def opts(server):
    return {"api_url": server.url, "api_key": server.key}


def raw(server, method, path, body=None, headers=None):
    req = urllib.request.Request(f"{server.url}{path}", method=method, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_volume_lifecycle(srv):
    from e2b import Volume
    from e2b.exceptions import VolumeException, VolumeNotFoundException

    vol = Volume.create("data", **opts(srv))
    assert vol.name == "data" and vol.volume_id and vol.token
    info = Volume.get_info(vol.volume_id, **opts(srv))
    assert (info.volume_id, info.name, info.token) == (vol.volume_id, "data", vol.token)
    assert [(v.volume_id, v.name) for v in Volume.list(**opts(srv))] == [(vol.volume_id, "data")]
    with pytest.raises(VolumeException, match='409: a volume named "data" already exists'):
        Volume.create("data", **opts(srv))
    with pytest.raises(VolumeException, match="400: invalid volume name"):
        Volume.create("no/slash", **opts(srv))
    again = Volume.connect(vol.volume_id, **opts(srv))
    assert again.token == vol.token

    vol.write_file("/kept.txt", "still here")
    assert Volume.destroy(vol.volume_id, **opts(srv)) is True
    assert Volume.destroy(vol.volume_id, **opts(srv)) is False
    with pytest.raises(VolumeNotFoundException):
        Volume.get_info(vol.volume_id, **opts(srv))
    assert Volume.list(**opts(srv)) == []
    # Its files are gone with it.
    assert not (srv.data / "volumes" / vol.volume_id).exists()


def test_files_and_directories(srv):
    from e2b import Volume
    from e2b.exceptions import VolumeException, VolumePathNotFoundException

    vol = Volume.create("files", **opts(srv))
    d = vol.make_dir("/a/b", force=True, mode=0o750)
    assert (d.path, d.type.value, d.mode) == ("/a/b", "directory", 0o750)
    with pytest.raises(VolumePathNotFoundException):
        vol.make_dir("/x/y")
    with pytest.raises(VolumeException, match="409: path /a/b already exists"):
        vol.make_dir("/a/b")

    st = vol.write_file("/a/b/hello.txt", "hello volume", mode=0o600, uid=1000, gid=1000)
    assert (st.name, st.size, st.mode, st.uid, st.gid, st.type.value) == ("hello.txt", 12, 0o600, 1000, 1000, "file")
    assert vol.read_file("/a/b/hello.txt") == "hello volume"
    blob = bytes(range(256)) * 4096
    vol.write_file("/bin.dat", io.BytesIO(blob))
    assert vol.read_file("/bin.dat", format="bytes") == blob
    assert b"".join(vol.read_file("/bin.dat", format="stream")) == blob
    vol.write_file("/bin.dat", b"short")
    assert vol.read_file("/bin.dat", format="bytes") == b"short"
    with pytest.raises(VolumePathNotFoundException):
        vol.write_file("/missing/dir/f", "x")
    assert vol.write_file("/made/on/demand.txt", "x", force=True).path == "/made/on/demand.txt"

    assert [e.path for e in vol.list("/")] == ["/a", "/bin.dat", "/made"]
    assert [e.path for e in vol.list("/a", depth=5)] == ["/a/b", "/a/b/hello.txt"]
    assert vol.get_info("/a/b/hello.txt").size == 12
    assert vol.exists("/a/b/hello.txt") and not vol.exists("/nope")
    assert vol.update_metadata("/a/b/hello.txt", mode=0o644).mode == 0o644

    with pytest.raises(VolumeException, match="400: .*'\\.\\.'"):
        vol.read_file("/../../etc/passwd")
    with pytest.raises(VolumePathNotFoundException):
        vol.read_file("/nope.txt")
    vol.remove("/a")
    assert not vol.exists("/a/b/hello.txt")
    with pytest.raises(VolumePathNotFoundException):
        vol.remove("/a")


def test_tokens_open_one_volume_only(srv):
    from e2b import Volume

    one = Volume.create("one", **opts(srv))
    two = Volume.create("two", **opts(srv))
    one.write_file("/secret.txt", "for one")
    url = f"/volumecontent/{one.volume_id}/file?path=/secret.txt"
    assert raw(srv, "GET", url, headers={"Authorization": f"Bearer {one.token}"}) == (200, b"for one")
    for headers in ({}, {"Authorization": f"Bearer {two.token}"}, {"Authorization": "Bearer nope"},
                    {"X-API-KEY": srv.key}):
        status, body = raw(srv, "GET", url, headers=headers)
        assert status == 401 and json.loads(body)["message"], (headers, body)
    status, _ = raw(srv, "GET", "/volumecontent/unknown/file?path=/x", headers={"Authorization": f"Bearer {one.token}"})
    assert status == 404


def test_a_broken_upload_keeps_the_old_file(srv):
    import socket
    from urllib.parse import urlparse

    from e2b import Volume

    vol = Volume.create("atomic", **opts(srv))
    vol.write_file("/f.txt", "old")
    u = urlparse(srv.url)
    with socket.create_connection((u.hostname, u.port)) as s:
        s.sendall((f"PUT /volumecontent/{vol.volume_id}/file?path=/f.txt HTTP/1.1\r\nHost: x\r\n"
                   f"Authorization: Bearer {vol.token}\r\nContent-Length: 1000000\r\n\r\n").encode() + b"n" * 1000)
    # The server saw the connection close mid-body: the old file is untouched, no temp file left.
    def settled():
        return not any((srv.data / "volumes" / vol.volume_id / "tmp").iterdir())
    from conftest import wait_until
    wait_until(settled, 10, "the broken upload's temp file to be removed")
    assert vol.read_file("/f.txt") == "old"


def test_async_volume(srv):
    from e2b import AsyncVolume

    async def main():
        vol = await AsyncVolume.create("async-vol", **opts(srv))
        await vol.write_file("/x.txt", "async")
        assert await vol.read_file("/x.txt") == "async"
        assert [e.name for e in await vol.list("/")] == ["x.txt"]
        assert await AsyncVolume.destroy(vol.volume_id, **opts(srv))

    asyncio.run(main())


def test_the_official_js_sdk(srv):
    out = run_js("""
import { Volume, VolumeNotFoundError } from 'e2b'
const vol = await Volume.create('js-vol')
await vol.makeDir('/d', { force: true })
const st = await vol.writeFile('/d/f.txt', 'from js', { mode: 0o640 })
const text = await vol.readFile('/d/f.txt')
const bytes = await vol.readFile('/d/f.txt', { format: 'bytes' })
const list = (await vol.list('/', { depth: 2 })).map((e) => e.path)
const info = await Volume.getInfo(vol.volumeId)
let missing = null
try { await vol.getInfo('/nope') } catch (e) { missing = e.constructor.name }
await vol.remove('/d')
const destroyed = await Volume.destroy(vol.volumeId)
console.log(JSON.stringify({ st, text, n: bytes.length, list, token: info.token === vol.token, missing, destroyed }))
""", server=srv, env={"E2B_VOLUME_API_URL": srv.url})
    assert out["st"]["mode"] == 0o640 and out["st"]["path"] == "/d/f.txt"
    assert (out["text"], out["n"]) == ("from js", 7)
    assert out["list"] == ["/d", "/d/f.txt"]
    assert out["token"] is True and out["destroyed"] is True
    assert out["missing"] is not None
