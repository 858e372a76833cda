"""Open a page in a real headless Chromium with no network, and report what it showed.

Chromium is Debian's package (`apt-get install chromium`; `.ci/run` installs it). Every host
resolves to nothing and every request goes to a closed proxy port, so a page that needed the
network would show it: a probe script, added to a copy of the page, records each image's decoded
size and every resource the page fetched (the Resource Timing API), and ``--dump-dom`` prints it.
The original page is screenshotted as it is. Screenshots and copies are kept under
``.local/test-artifacts/`` (gitignored) for a person to look at.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / ".local" / "test-artifacts"
NO_NETWORK = (
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=http://127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
)
PROBE = (
    "<script>addEventListener('load',()=>document.body.setAttribute('data-probe',"
    "JSON.stringify({images:[...document.images].map(i=>({id:i.closest('figure')?.id,"
    "complete:i.complete,width:i.naturalWidth,height:i.naturalHeight})),"
    "resources:performance.getEntriesByType('resource').map(e=>e.name)})))</script>"
)


def chromium() -> str:
    """The browser, or a skip (a failure where DROPFIT_REQUIRE_BROWSER=1, as in CI)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("DROPFIT_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium is not installed: apt-get install -y chromium (.ci/run does)")
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    return found


@dataclass(frozen=True)
class Shown:
    dom: str  # the page's DOM after load (the probe's copy)
    images: list[dict[str, Any]]  # each <img>: figure id, decoded?, natural size
    fetched: list[str]  # every resource the page requested
    screenshot: Path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    command = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", *NO_NETWORK, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def show(page: str, name: str, height: int = 2400) -> Shown:
    """Load ``page`` (HTML text) from a file, offline; keep its screenshot as ``<name>.png``."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    original = ARTIFACTS / f"{name}.html"
    original.write_text(page)
    probed = ARTIFACTS / f"{name}.probe.html"
    probed.write_text(page.replace("</body>", f"{PROBE}</body>"))
    dumped = _run("--virtual-time-budget=5000", "--dump-dom", probed.as_uri())
    found = re.search(r'data-probe="([^"]*)"', dumped.stdout)
    assert found, f"no probe in the DOM: {dumped.stderr[-2000:]}"
    probe = json.loads(html.unescape(found.group(1)))
    screenshot = ARTIFACTS / f"{name}.png"
    screenshot.unlink(missing_ok=True)
    shot = _run(f"--window-size=1280,{height}", f"--screenshot={screenshot}", original.as_uri())
    assert screenshot.is_file(), shot.stderr[-2000:]
    return Shown(dumped.stdout, probe["images"], probe["resources"], screenshot)


def coloured_pixels(screenshot: Path) -> dict[str, int]:
    """How many pixels of the screenshot are clearly blue, clearly red, and not white."""
    import numpy as np
    from PIL import Image  # matplotlib's dependency: installed with the report function's

    r, g, b = np.asarray(Image.open(screenshot).convert("RGB"), dtype=np.int32).transpose(2, 0, 1)
    blue = (b > 120) & (b > r + 40) & (b > g + 10)
    red = (r > 150) & (r > g + 80) & (r > b + 80)
    ink = r + g + b < 600
    return {"blue": int(blue.sum()), "red": int(red.sum()), "ink": int(ink.sum())}
