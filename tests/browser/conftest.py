"""Headless Chromium (Debian's package) driven by Selenium against a real `nova serve` with the fake model.

The set-up installs chromium and chromium-driver with apt when they are missing and it may (root); the tests
skip, saying why, only when that is impossible.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import fake_llm
from tests.integration.conftest_http import ALICE, BOB, ApiServer, _wait_ready, start_serve

__all__ = ["fake_llm"]

_shots: dict[str, Path] = {}
CHROMIUM = ("chromium", "chromium-browser")
DRIVER = ("chromedriver",)
GRAPHS = ("review", "patch", "pair", "sleepy")


def _which(names: tuple[str, ...]) -> str | None:
    for name in names:
        found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
        if found:
            return found
    return None


def _install_chromium() -> str:
    """Install Debian's chromium and chromium-driver; return what went wrong, or '' on success."""
    if shutil.which("apt-get") is None:
        return "apt-get is not available (not a Debian-like system)"
    if os.geteuid() != 0:
        return "not root, so apt-get cannot install them (run `sudo make browser-deps`)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"]):
        try:
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"`{' '.join(cmd)}` failed: {exc}"
        if done.returncode != 0:
            return f"`{' '.join(cmd)}` exited {done.returncode}: {(done.stderr or done.stdout)[-400:]}"
    return ""


@pytest.fixture(scope="session")
def chromium() -> tuple[str, str]:
    """Return (chromium binary, chromedriver), installing them when missing; skip if they cannot be had."""
    browser, driver = _which(CHROMIUM), _which(DRIVER)
    if browser is None or driver is None:
        problem = _install_chromium()
        browser, driver = _which(CHROMIUM), _which(DRIVER)
        if browser is None or driver is None:
            pytest.skip(
                "browser tests need Debian's chromium and chromium-driver, which could not be installed: " + problem
            )
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.skip("browser tests need selenium: pip install -e '.[dev]'")
    return browser, driver


@dataclass(frozen=True)
class WebServer(ApiServer):
    """A `nova serve` process the tests may stop."""

    proc: subprocess.Popen[bytes] | None = field(default=None, compare=False)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def web_server(
    pg_admin_url: str, fake_llm: str, vector_cache: object, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WebServer]:
    """Start `python -m api.serve` with keys for alice and bob and the test graphs (review gates among them)."""
    db_url, env, url, log, proc = start_serve(pg_admin_url, fake_llm, tmp_path_factory.mktemp("web-home"), GRAPHS)
    server = WebServer(url, db_url, env, log, proc)
    try:
        _wait_ready(server, proc)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(chromium: tuple[str, str]) -> Iterator[Any]:
    """A headless Chromium session, 1280x900, with the tests' network guard not involved (it runs apart)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = chromium
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,900",
        "--force-device-scale-factor=1",
        "--disable-extensions",
        "--no-first-run",
        "--lang=en-GB",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def pytest_configure(config: pytest.Config) -> None:
    """Screenshots go where `--screenshots` says, else to a scratch directory (a test run leaves docs/ alone)."""
    chosen = config.getoption("--screenshots", default=None)
    _shots["dir"] = Path(chosen) if chosen else Path(tempfile.mkdtemp(prefix="nova-screenshots-"))


def screenshot(driver: Any, name: str) -> Path:
    """Save the current page as <screenshots dir>/<name>.png and return its path."""
    folder = _shots.get("dir") or Path(tempfile.mkdtemp(prefix="nova-screenshots-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    assert driver.save_screenshot(str(path)), f"could not save the screenshot {path}"
    return path


__all__ += ["ALICE", "BOB", "WebServer", "screenshot"]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep a screenshot and the page's HTML of a failed browser test beside the test's temp files."""
    report = yield
    driver = getattr(item, "funcargs", {}).get("browser")
    if report.when == "call" and report.failed and driver is not None:
        where = Path(item.config._tmp_path_factory.getbasetemp()) / "browser-failures"  # type: ignore[attr-defined]
        where.mkdir(parents=True, exist_ok=True)
        try:
            driver.save_screenshot(str(where / f"{item.name}.png"))
            (where / f"{item.name}.html").write_text(driver.page_source)
            report.sections.append(("browser", f"screenshot and HTML in {where}"))
        except Exception as exc:  # the browser may be gone
            report.sections.append(("browser", f"no screenshot: {exc!r}"))
    return report
