"""A destination on the host for sandboxes' egress: a network namespace of its own holding
addresses of 198.18.0.0/15 (benchmarking range: not private, so sandboxd's global rules let
sandboxes reach it), routed from the host over a veth pair on 198.19.<k>.0/30, running a server
script. Nothing ever goes to an outside address."""

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path


def ip(*args, check=True):
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


@contextmanager
def destination(tag: str, k: int, addrs, route: str, script: Path, args=()):
    """Runs `script` (which prints "ready" once it listens) in a namespace holding `addrs`;
    the host routes `route` to it. Everything is removed on exit."""
    ns, host_if = f"{tag}{os.getpid()}", f"{tag}{os.getpid()}h"
    link_host, link_ns = f"198.19.{k}.1", f"198.19.{k}.2"
    proc = None
    try:
        ip("netns", "add", ns)
        ip("link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", ns)
        ip("addr", "add", f"{link_host}/30", "dev", host_if)
        ip("link", "set", host_if, "up")
        for cmd in (["addr", "add", f"{link_ns}/30", "dev", "eth0"], ["link", "set", "eth0", "up"],
                    ["link", "set", "lo", "up"], ["route", "add", "default", "via", link_host]):
            ip("-n", ns, *cmd)
        for a in addrs:
            ip("-n", ns, "addr", "add", f"{a}/32", "dev", "eth0")
        ip("route", "add", route, "via", link_ns, "dev", host_if)
        proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, str(script), *map(str, args)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        yield
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        ip("route", "del", route, check=False)
        ip("link", "del", host_if, check=False)
        ip("netns", "del", ns, check=False)
