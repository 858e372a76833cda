"""``sam local`` on this machine: the template for its architecture, and the address on which
sam local's containers reach the local stack.

template.yaml builds arm64 functions (what Lambda runs cheapest), while the Lambda image a
developer has locally is the machine's own (x86_64 here). ``make build-local`` builds a copy of
the template whose functions and layer are of this machine's architecture, into
``.aws-sam/build-local/`` (samconfig.toml points ``sam local invoke``/``start-api`` at it).

    python -m dropfit_local.sam_local    # write .aws-sam/local/template.yaml, print its path
"""

from __future__ import annotations

import fcntl
import os
import re
import socket
import struct
from pathlib import Path

from dropfit_local.lambda_runtime import ARCHITECTURE

ROOT = Path(__file__).resolve().parents[1]
LOCAL_TEMPLATE = ROOT / ".aws-sam" / "local" / "template.yaml"
DOCKER_BRIDGE = "docker0"
_ARCHITECTURES = re.compile(r"^(\s*(?:Compatible)?Architectures:\s*\[)arm64(\]\s*)$", re.MULTILINE)
_BUILD_ARCHITECTURE = re.compile(r"^(\s*BuildArchitecture:\s*)arm64(\s*)$", re.MULTILINE)
_CODE = re.compile(r"^(\s*(?:CodeUri|ContentUri):\s*)(\S+)\s*$", re.MULTILINE)
_SIOCGIFADDR = 0x8915  # Linux: an interface's IPv4 address


def template_for(text: str, architecture: str, relative_to: Path) -> str:
    """template.yaml's ``text`` with every function and layer of ``architecture``, and code
    paths relative to ``relative_to`` (where the copy is written)."""
    text, functions = _ARCHITECTURES.subn(rf"\g<1>{architecture}\g<2>", text)
    text, layers = _BUILD_ARCHITECTURE.subn(rf"\g<1>{architecture}\g<2>", text)
    if not functions or not layers:
        raise ValueError(
            "template.yaml no longer says `Architectures: [arm64]` and `BuildArchitecture: "
            "arm64`: update dropfit_local/sam_local.py with it"
        )

    def relocated(match: re.Match[str]) -> str:
        return match[1] + os.path.relpath(ROOT / match[2], relative_to) + "/"

    return _CODE.sub(relocated, text)


def write_template(target: Path = LOCAL_TEMPLATE, architecture: str = ARCHITECTURE) -> Path:
    """Write the copy of template.yaml for ``architecture`` (this machine's) to ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    source = (ROOT / "template.yaml").read_text()
    target.write_text(template_for(source, architecture, target.parent))
    return target


def docker_gateway() -> str | None:
    """The docker0 bridge's IPv4 address (containers reach this host there), if it exists."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            answer = fcntl.ioctl(
                probe.fileno(), _SIOCGIFADDR, struct.pack("256s", DOCKER_BRIDGE.encode())
            )
        except OSError:
            return None
    return socket.inet_ntoa(answer[20:24])


if __name__ == "__main__":
    print(write_template().relative_to(ROOT))
