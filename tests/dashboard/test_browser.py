"""The dashboard in a real browser: `streamlit run dashboard/app.py` driven by Playwright + Debian Chromium.

Creates an app through the form, deploys it twice (Deploy, then Rebuild & Deploy), follows each
deployment live to success, and saves a screenshot of every page under docs/screenshots/.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

playwright_api = pytest.importorskip("playwright.sync_api")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def dashboard_url(control_plane, tmp_path):
    """The dashboard served by a real `streamlit run` on a free loopback port, against control_plane."""
    port = _free_port()
    env = {**os.environ, "SERVERSINC_API": control_plane.address, "SERVERSINC_HOME": str(tmp_path / "home")}
    log = open(tmp_path / "streamlit.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard" / "app.py"),
         "--server.address", "127.0.0.1", "--server.port", str(port), "--server.headless", "true",
         "--client.toolbarMode", "minimal", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{url}/_stcore/health", timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError((tmp_path / "streamlit.log").read_text())
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def browser_page():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium not installed")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1100})
        page.set_default_timeout(30_000)
        try:
            yield page
        finally:
            browser.close()


def settle(page) -> None:
    """Wait until Streamlit has finished the current run (its 'Running…' indicator is gone)."""
    page.wait_for_timeout(300)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running')",
        timeout=30_000,
    )


def shoot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    settle(page)
    page.wait_for_timeout(500)  # let charts and badges paint
    # Streamlit scrolls inside its own container, so a full-page shot is just the viewport: grow it.
    height = page.evaluate(
        "() => document.querySelector('[data-testid=\"stMainBlockContainer\"]').scrollHeight")
    page.set_viewport_size({"width": 1440, "height": max(900, min(2400, int(height) + 40))})
    page.wait_for_timeout(300)
    page.screenshot(path=str(SHOTS / name))
    page.set_viewport_size({"width": 1440, "height": 1100})


def deploy_and_wait(page, button: str) -> None:
    page.get_by_role("button", name=button, exact=True).click()
    page.wait_for_url("**/deployment?deployment=*")
    page.get_by_text("Deployment succeeded").wait_for(timeout=90_000)
    assert page.get_by_text("SUCCEEDED").first.is_visible()
    settle(page)


def test_create_deploy_and_screenshot_every_page(control_plane, sample_url, app_name, dashboard_url, browser_page):
    page = browser_page
    page.goto(dashboard_url)
    page.get_by_role("heading", name="Apps").wait_for()

    # Create the app through the form.
    page.get_by_label("Name", exact=True).fill(app_name)
    page.get_by_label("Repository URL").fill(sample_url)
    page.get_by_role("button", name="Create app").click()
    page.get_by_text(f"Created app {app_name}").wait_for()

    # Open it and deploy: the dashboard moves to the deployment page and follows it live.
    page.get_by_role("link", name="Open").first.click()
    page.get_by_role("heading", name=app_name).wait_for()
    deploy_and_wait(page, "Deploy")
    assert page.get_by_text("Step 1/").first.is_visible()

    # Back to the app for a second, rebuilt deployment, so the history and chart have two entries.
    page.get_by_role("link", name=f"Back to {app_name}").click()
    page.get_by_role("heading", name=app_name).wait_for()
    deploy_and_wait(page, "Rebuild & Deploy")
    shoot(page, "deployment.png")

    page.get_by_role("link", name=f"Back to {app_name}").click()
    page.get_by_role("heading", name=app_name).wait_for()
    page.get_by_text("Build and deploy time").wait_for()
    shoot(page, "app.png")

    page.get_by_role("link", name="Servers").click()
    page.get_by_role("heading", name="Servers").wait_for()
    page.get_by_text("online").first.wait_for()
    shoot(page, "servers.png")

    page.get_by_role("link", name="Apps").click()
    page.get_by_role("heading", name="Apps").wait_for()
    page.get_by_text("running").first.wait_for()
    shoot(page, "apps.png")

    for name in ("apps.png", "app.png", "deployment.png", "servers.png"):
        assert (SHOTS / name).stat().st_size > 10_000, name
