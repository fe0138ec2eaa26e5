"""Volume mounts against the guest's own disk, in one sandbox: 64 MiB written (fsync) and read
back cold, 200 small files created, listed with `ls -l` (cold) and removed; milliseconds per
step, three rounds. Runs its own sandboxd (`SANDBOXD_BIN`, templates from
`SANDBOXD_TEMPLATES_DIR`, as tests/compat does) with the official SDK:

    SANDBOXD_BIN=target/release/sandboxd target/official-py/bin/python bench/volume_mounts.py

Not part of bench/run.sh (no peer to compare with); figures in docs/volumes.md."""
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "compat"))
import conftest  # noqa: E402  (tests/compat's server helper)

server = conftest.Sandboxd(Path(tempfile.mkdtemp(prefix="volbench-")), env={"SANDBOXD_POOL_SIZE": "0"})
server.start()
try:
    from e2b import Sandbox, Volume

    os.environ["E2B_VOLUME_API_URL"] = server.url
    vol = Volume.create("bench", api_url=server.url, api_key=server.key)
    sbx = Sandbox.create("base", volume_mounts={"/mnt/v": vol}, timeout=600, **server.opts)
    script = r'''
set -e
t() { local s=$(date +%s%N); eval "$2" >/dev/null 2>&1; local e=$(date +%s%N); echo "$1 $(( (e - s) / 1000000 ))"; }
for d in /mnt/v /home/user/local; do
  mkdir -p $d/files
  t "$d write64" "dd if=/dev/zero of=$d/f bs=1M count=64 conv=fsync"
  sync; echo 3 > /proc/sys/vm/drop_caches
  t "$d read64" "dd if=$d/f of=/dev/null bs=1M"
  t "$d create200" "for i in \$(seq 200); do echo x > $d/files/\$i; done"
  sync; echo 3 > /proc/sys/vm/drop_caches
  t "$d stat200" "ls -l $d/files"
  t "$d rm200" "rm -r $d/files"
done
'''
    for rnd in range(3):
        out = sbx.commands.run(script, user="root", timeout=600).stdout
        print(f"round {rnd}:", " | ".join(out.split("\n")))
    sbx.kill()
finally:
    server.stop()
