"""Debian's headless Chromium: render a local HTML file, give back the DOM it built, a screenshot's
pixels and every request the page made.

One run: ``chromium --headless --dump-dom --screenshot --log-net-log`` with a throwaway profile. The
net log records every URL request of the browser; Chromium's own background traffic (component
updater, sign-in: seen with chromium 156 even with --disable-background-networking) has the
initiator ``not an origin`` and is left out; a request the page made names the page's origin as its
initiator (``null`` for a file: page) and is kept. file: and data: loads are not URL requests.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path

from tests.harness.prereq import missing_prerequisite

BINARY = "chromium"
TIMEOUT_S = 120
_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
          "--disable-background-networking", "--disable-component-update", "--disable-sync",
          "--disable-default-apps", "--disable-extensions", "--hide-scrollbars", "--window-size=1000,900",
          "--net-log-capture-mode=Default")


def chromium() -> str:
    """The browser's path; a missing one skips locally and fails under CI=true (make test installs it)."""
    path = shutil.which(BINARY)
    if path is None:
        missing_prerequisite("chromium is not installed (scripts/ensure-deps.sh installs it with apt when root: "
                             "'apt-get install chromium')")
    return path


@dataclass(frozen=True)
class Rendered:
    dom: str
    pixels: set[tuple[int, int, int]]  # the distinct RGB colours of the screenshot
    page_requests: list[str]  # URLs the page asked for (browser background traffic left out)


def _page_requests(net_log: Path) -> list[str]:
    data = json.loads(net_log.read_text())
    kinds = {v: k for k, v in data["constants"]["logEventTypes"].items()}
    out = []
    for event in data["events"]:
        params = event.get("params") or {}
        if (kinds.get(event["type"]) == "URL_REQUEST_START_JOB" and "url" in params
                and params.get("initiator") != "not an origin"):
            out.append(str(params.get("url")))
    return out


def _png_colours(png: bytes) -> set[tuple[int, int, int]]:
    """The colours of an 8-bit RGB/RGBA non-interlaced PNG (what Chromium writes), filters undone."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width = 8, b"", 0
    bpp = 4
    while pos < len(png):
        (n,), kind = struct.unpack(">I", png[pos:pos + 4]), png[pos + 4:pos + 8]
        body = png[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            width, _h, depth, ctype, _c, _f, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and ctype in (2, 6) and interlace == 0, (depth, ctype, interlace)
            bpp = 4 if ctype == 6 else 3
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw, stride = zlib.decompress(idat), width * bpp
    prev, colours = bytearray(stride), set()
    for row in range(len(raw) // (stride + 1)):
        ftype, line = raw[row * (stride + 1)], bytearray(raw[row * (stride + 1) + 1:(row + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 255
            elif ftype == 2:
                line[i] = (line[i] + b) & 255
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        colours.update(zip(line[0::bpp], line[1::bpp], line[2::bpp], strict=False))
        prev = line
    return colours


def render(html: Path, scratch: Path) -> Rendered:
    """Open ``html`` (a local file) in headless Chromium; scratch holds the profile, log and screenshot."""
    binary = chromium()
    scratch.mkdir(parents=True, exist_ok=True)
    net_log, shot = scratch / "net-log.json", scratch / "screenshot.png"
    common = [binary, *_FLAGS, f"--user-data-dir={scratch / 'profile'}"]
    dom = subprocess.run([*common, f"--log-net-log={net_log}", "--dump-dom", html.resolve().as_uri()],
                         capture_output=True, text=True, timeout=TIMEOUT_S, check=False, stdin=subprocess.DEVNULL)
    assert dom.returncode == 0 and dom.stdout, dom.stderr[-2000:]
    requests = _page_requests(net_log)
    pic = subprocess.run([*common, f"--log-net-log={scratch / 'net-log-2.json'}", f"--screenshot={shot}",
                          html.resolve().as_uri()], capture_output=True, text=True, timeout=TIMEOUT_S,
                         check=False, stdin=subprocess.DEVNULL)
    assert pic.returncode == 0 and shot.exists(), pic.stderr[-2000:]
    requests += _page_requests(scratch / "net-log-2.json")
    return Rendered(dom.stdout, _png_colours(shot.read_bytes()), requests)
