"""The documentation site, built and opened in a real browser (headless Chromium through Playwright).

The site is built strictly into a temporary folder and served over HTTP (the search index is
fetched by a web worker, which ``file://`` forbids). The browser is the system's Chromium, never
one Playwright downloads; without it the test skips, saying how to install it. Screenshots go to
``$GEOCNN_TEST_ARTIFACTS`` (else the test's tmp_path).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium() -> str | None:
    """The system's Chromium executable, if any."""
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


def build_site(out: Path) -> float:
    """``mkdocs build --strict`` into ``out``; the seconds it took."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)], cwd=ROOT,
                            capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stderr[-4000:]
    return time.perf_counter() - start


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(folder: Path) -> Iterator[str]:
    """``python -m http.server`` on a free local port while the block runs; yields the base URL."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                               "--directory", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):  # up to 10 s for the server to answer
            with contextlib.suppress(OSError):
                urllib.request.urlopen(base + "/", timeout=1).close()
                break
            time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.slow
def test_site_renders_in_chromium(tmp_path):
    executable = chromium()
    if executable is None:
        pytest.skip("no Chromium found (looked for " + ", ".join(CHROMIUM_NAMES) + "): apt-get install chromium")
    from playwright.sync_api import expect, sync_playwright  # the docs extra: pip install -e ".[docs]"

    shots = Path(os.environ.get("GEOCNN_TEST_ARTIFACTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    seconds = build_site(tmp_path / "site")
    print(f"\nsite built in {seconds:.1f} s; screenshots in {shots}")
    with serving(tmp_path / "site") as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        outside: list[str] = []  # the site must read offline: no fonts, scripts or styles from elsewhere
        page.on("request", lambda request: outside.append(request.url)
                if not request.url.startswith((base, "data:", "blob:")) else None)

        page.goto(base + "/")
        expect(page).to_have_title("geocnn")
        nav = page.locator("nav.md-nav--primary")
        for section in ("Getting started", "How-to", "Reference", "Troubleshooting"):
            expect(nav.get_by_text(section, exact=True).first).to_be_attached()
        expect(page.locator("article h1").first).to_be_visible()
        page.screenshot(path=shots / "home.png", full_page=False)

        page.goto(base + "/reference/layers/")
        expect(page).to_have_title("Layer kinds - geocnn")
        cell = page.locator("article table td code", has_text="conv_transpose").first
        expect(cell).to_be_visible()
        expect(page.locator("article h3#conv_transpose")).to_be_attached()
        page.screenshot(path=shots / "reference-layers.png", full_page=False)

        page.goto(base + "/")
        page.locator("label.md-search__icon, .md-search__input").first.click()
        # The search worker builds its index after the page loads: wait for its prompt, then type key by key
        # as a reader does (on a busy CI machine a query set in one go by fill() was never searched).
        expect(page.locator(".md-search-result__meta")).to_have_text("Type to start searching", timeout=30_000)
        page.locator("input.md-search__input").press_sequentially("receptive", delay=30)
        results = page.locator(".md-search-result__item")
        expect(results.first).to_be_visible(timeout=15_000)
        expect(page.locator(".md-search-result__meta")).to_have_text(re.compile(r"[1-9]\d* matching documents?"))
        expect(page.locator(".md-search-result mark").first).to_have_text(re.compile("receptive", re.I))
        page.screenshot(path=shots / "search.png", full_page=False)
        assert outside == [], f"the site asked for {outside[:3]}"
        browser.close()
    assert {p.name for p in shots.iterdir()} >= {"home.png", "reference-layers.png", "search.png"}
