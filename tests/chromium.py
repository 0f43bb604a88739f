"""Debian's chromium as an agent's browser: default settings, a fresh profile whose only
trust is an NSS DB under its ``$HOME``; what it loads and which certificate it is shown."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
AVAILABLE = os.path.exists(CHROMIUM) and shutil.which("certutil") is not None
needs_chromium = pytest.mark.skipif(not AVAILABLE,
                                    reason="chromium or certutil (libnss3-tools) missing")


@dataclass(frozen=True)
class Shown:
    """One page load: ``ok`` or the network error, and the leaf certificate the browser was
    shown (its sha256 as cckit writes fingerprints), with the key exchange it negotiated."""

    outcome: str
    sha256: str | None
    key_exchange: str | None
    protocol: str | None


def nssdb(home: Path, *roots: Path) -> Path:
    """A browser profile under ``home`` whose only trusted certificates are ``roots``
    (Chromium reads ``$HOME/.pki/nssdb``); the database's folder."""
    db = home / ".pki" / "nssdb"
    db.mkdir(parents=True)
    subprocess.run(["certutil", "-N", "-d", f"sql:{db}", "--empty-password"], check=True)
    for i, root in enumerate(roots):
        subprocess.run(["certutil", "-A", "-d", f"sql:{db}", "-n", f"root {i}", "-t", "C,,",
                        "-i", str(root)], check=True)
    return db


def load(home: Path, urls: list[str], hosts: list[str]) -> dict[str, Shown]:
    """Load each URL in a fresh headless Chromium (certificate errors are not ignored) and
    read what it was shown from DevTools' security state (the interstitial's too)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    rules = ", ".join(f"MAP {h} 127.0.0.1" for h in hosts)
    out: dict[str, Shown] = {}
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
            args=["--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  f"--host-resolver-rules={rules}"])
        try:
            for url in urls:
                # a browser context each (a fresh in-memory profile over the same NSS DB): no
                # security state of one URL is read for another, and no certificate error of
                # one slows the next (from the third in one context, Chromium took 3 s a load)
                context = browser.new_context(ignore_https_errors=False)
                page = context.new_page()
                cdp = context.new_cdp_session(page)
                states: list[dict] = []
                cdp.on("Security.visibleSecurityStateChanged",
                       lambda e, states=states: states.append(e["visibleSecurityState"]))
                cdp.send("Security.enable")
                try:
                    r = page.goto(url, timeout=15000)
                    outcome = "ok" if r is not None and r.ok else f"HTTP {r and r.status}"
                except sync_api.Error as e:
                    outcome = str(e).splitlines()[0]
                out[url] = _shown(outcome, states, page)
                context.close()
        finally:
            browser.close()
    return out


def _shown(outcome: str, states: list[dict], page) -> Shown:
    deadline = time.monotonic() + 5
    while True:
        cert = next((s["certificateSecurityState"] for s in reversed(states)
                     if s.get("certificateSecurityState")), None)
        if cert is not None or time.monotonic() > deadline:
            break
        page.wait_for_timeout(50)  # Playwright delivers DevTools events while it waits
    if cert is None:
        return Shown(outcome, None, None, None)
    leaf = base64.b64decode(cert["certificate"][0])
    sha = hashlib.sha256(leaf).hexdigest().upper()
    return Shown(outcome, ":".join(sha[i:i + 2] for i in range(0, len(sha), 2)),
                 cert.get("keyExchange"), cert.get("protocol"))
