"""What E2B's SDK exposes under ``e2b.api`` for packages built on it (``e2b-code-interpreter``):
``client_sync.get_transport`` / ``client_async.get_transport``, the httpx transports those
packages make their own requests with. This SDK's requests go through the Rust core; httpx is
only needed by such packages (they depend on it themselves)."""
