"""Ready commands for ``set_start_cmd`` / ``set_ready_cmd`` (the official SDK's shell snippets,
produced by the core)."""

from .. import _native


class ReadyCmd:
    """Wrapper class for ready check commands."""

    def __init__(self, cmd: str):
        self.__cmd = cmd

    def get_cmd(self) -> str:
        return self.__cmd


def wait_for_port(port: int) -> ReadyCmd:
    """Wait until something listens on ``port`` (checked with ``ss``)."""
    return ReadyCmd(_native.wait_for_port(port))


def wait_for_url(url: str, status_code: int = 200) -> ReadyCmd:
    """Wait until ``url`` answers with ``status_code`` (checked with ``curl``)."""
    return ReadyCmd(_native.wait_for_url(url, status_code))


def wait_for_process(process_name: str) -> ReadyCmd:
    """Wait until a process named ``process_name`` runs (checked with ``pgrep``)."""
    return ReadyCmd(_native.wait_for_process(process_name))


def wait_for_file(filename: str) -> ReadyCmd:
    """Wait until ``filename`` exists."""
    return ReadyCmd(_native.wait_for_file(filename))


def wait_for_timeout(timeout: int) -> ReadyCmd:
    """Wait ``timeout`` **milliseconds** (at least one second)."""
    return ReadyCmd(_native.wait_for_timeout(int(timeout)))
