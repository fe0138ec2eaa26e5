"""``DockerfileSyntaxError``: a Dockerfile ``from_dockerfile`` refuses (parsed by the core)."""

from typing import Optional


class DockerfileSyntaxError(ValueError):
    """A Dockerfile that cannot be turned into template steps."""

    def __init__(self, message: str, line: Optional[int] = None) -> None:
        self.line = line
        super().__init__(message)
