"""Headless Chromium for the tests that look at a web page as a person's browser renders it.

Debian's chromium, installed by infra/chromium/install-local.sh (apt-get as root, else unpacked
into `.venv/chromium`). Test support, not part of the installed package.
"""

from __future__ import annotations

import html
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTALL = ROOT / "infra" / "chromium" / "install-local.sh"
LOCAL = ROOT / ".venv" / "chromium"
INSTALL_TIMEOUT_S = 600
RENDER_TIMEOUT_S = 120
# Virtual time: the page's scripts and fetches run until idle or this many virtual ms, whichever
# comes first, before the DOM is dumped — long enough for a React app to load its data.
VIRTUAL_TIME_MS = 15_000


class ChromiumUnavailable(RuntimeError):
    """Chromium could not be installed here: the reason a test that needs it skips."""


def install_chromium() -> Path:
    """The path of a Chromium to run, installing it first if needed (quick when it is there)."""
    try:
        done = subprocess.run(
            ["bash", str(INSTALL), str(LOCAL)],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        raise ChromiumUnavailable(f"{INSTALL.name} took over {INSTALL_TIMEOUT_S} s") from exc
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise ChromiumUnavailable(f"{INSTALL.name} failed ({done.returncode}): {tail}")
    return Path(lines[-1])


def dump_dom(chromium: Path, url: str, profile: Path) -> str:
    """The page's DOM once its scripts have run: what a browser shows, as HTML."""
    done = subprocess.run(
        [
            str(chromium),
            "--headless=new",
            "--no-sandbox",  # root in CI, and no setuid sandbox in an unpacked install
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={profile}",
            f"--virtual-time-budget={VIRTUAL_TIME_MS}",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=RENDER_TIMEOUT_S,
    )
    if done.returncode != 0:
        raise RuntimeError(f"chromium failed on {url} ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


def visible_text(dom: str) -> str:
    """The text a person reads on the page, whitespace collapsed: what a test compares with."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S | re.I)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())
