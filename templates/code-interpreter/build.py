"""Builds sandboxd's `code-interpreter-v1` template, the one E2B's `e2b-code-interpreter`
packages create their sandboxes from: `base` plus this folder's server (`server.py`, `kernel.py`:
standard library only), started by the template and waited for on port 49999, so every sandbox
restores with the server and a warm Python context already running.

    python templates/code-interpreter/build.py [NAME]

uses whichever `e2b` package is installed (ours or the official one) and the usual settings
(`E2B_API_URL` / `E2B_API_KEY`, or the embedded default).
"""

import os
import sys

from e2b import Template, default_build_logger, wait_for_port

HERE = os.path.dirname(os.path.abspath(__file__))
NAME = "code-interpreter-v1"
PORT = 49999


def template():
    return (
        Template(file_context_path=HERE)
        .from_template("base")
        .copy(["server.py", "kernel.py"], "/opt/code-interpreter/", user="root")
        .set_start_cmd("python3 /opt/code-interpreter/server.py", wait_for_port(PORT))
    )


def build(name=NAME, **opts):
    return Template.build(template(), name, **opts)


if __name__ == "__main__":
    info = build(sys.argv[1] if len(sys.argv) > 1 else NAME, on_build_logs=default_build_logger())
    print(info.template_id)
