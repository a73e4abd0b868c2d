"""The status page in a real browser: Debian's chromium, driven by chromedriver (selenium).

Load the page on a running stack, see both programs RUNNING, reload with the CLI and see
the entry appear in the timeline without reloading the page, kill -9 the daemon and see
the page say so, start fnud again and see it recover with its history. Screenshots go to
``test-artifacts/`` (or ``$FNUD_ARTIFACTS``).
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from testkit.stackdir import ROOT, StackDir, free_port, wait_for

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
TOKEN = "browser-token-0123456789abcdef"
ARTIFACTS = Path(os.environ.get("FNUD_ARTIFACTS") or ROOT / "test-artifacts")

if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
    if os.environ.get("CI"):
        raise RuntimeError("chromium and chromium-driver are missing: make test installs them")
    pytest.skip("no chromium/chromedriver: `make test` installs them", allow_module_level=True)

from selenium import webdriver  # noqa: E402  (only once we know there is a browser)
from selenium.webdriver.common.by import By  # noqa: E402


@pytest.fixture
def browser() -> Iterator[Any]:
    profile = tempfile.mkdtemp(prefix="fnud-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
        "--no-first-run", "--disable-extensions", "--disable-background-networking",
        "--disable-sync", "--disable-component-update", "--window-size=1000,1500",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(arg)
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()
        wait_for(
            lambda: not [p for p in psutil.process_iter(["cmdline"])
                         if profile in " ".join(p.info["cmdline"] or [])],
            timeout=20, message="chromium to exit",
        )
        shutil.rmtree(profile, ignore_errors=True)


def _text(driver: Any, selector: str) -> str:
    """The rendered text of every match, read in one script run inside the page.

    The page re-renders its lists on every poll: element handles fetched first and read
    one by one afterwards can go stale in between (seen once in CI). Table cells come
    out tab-separated; they are joined with one space, as selenium's ``.text`` does.
    """
    text: str = driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]))"
        ".map(e => e.innerText.replace(/[ \\t]+/g, ' ')).join('\\n');",
        selector,
    )
    return text


def _hidden(driver: Any, element_id: str) -> bool:
    hidden: bool = driver.execute_script(
        "return document.getElementById(arguments[0]).hidden;", element_id
    )
    return hidden


def _get(url: str) -> None:
    with urllib.request.urlopen(url, timeout=10) as response:
        response.read()


def test_the_page_follows_the_stack_live(
    stack_factory: Callable[..., StackDir], browser: Any
) -> None:
    port = free_port()
    stack = stack_factory(
        extra_ini="disable-logging = false",
        extra_toml=f'\n[web]\nlisten = "127.0.0.1:{port}"\ntoken = "{TOKEN}"\n',
    )
    stack.start()
    for _ in range(20):  # some traffic for the chart
        _get(stack.url + "/")
    browser.get(f"http://127.0.0.1:{port}/")

    def programs() -> str:
        return _text(browser, "#programs tbody tr")

    wait_for(lambda: "uwsgi RUNNING" in programs() and "nginx RUNNING" in programs(),
             message="both programs RUNNING on the page")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#workers tbody tr")) == 3
    assert browser.find_element(By.ID, "do-reload").is_displayed()  # a token is set
    browser.execute_script("window.fnudSamePage = true;")

    assert stack.fnud("reload").returncode == 0
    wait_for(lambda: "cli" in _text(browser, "#timeline li:first-child")
             and "ok" in _text(browser, "#timeline li:first-child"),
             message="the CLI reload in the timeline")
    assert browser.execute_script("return window.fnudSamePage === true;"), "page was reloaded"
    wait_for(lambda: "req/s" in _text(browser, "#rates"), message="the request chart")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "status-page.png"))

    browser.set_window_size(390, 1400)  # a phone: nothing wider than the screen
    assert browser.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth;"
    )
    browser.save_screenshot(str(ARTIFACTS / "status-page-phone.png"))

    daemon = psutil.Process(int(stack.status()["daemon"]["pid"]))  # type: ignore[index]
    daemon.send_signal(signal.SIGKILL)
    daemon.wait(timeout=10)
    wait_for(lambda: "not answering" in _text(browser, "#down"),
             message="the page to say the daemon is not answering")
    browser.save_screenshot(str(ARTIFACTS / "status-page-daemon-down.png"))

    stack.start()  # adopts the programs the killed daemon left running
    wait_for(lambda: _hidden(browser, "down"),
             message="the page to recover once fnud runs again")
    assert "cli" in _text(browser, "#timeline li:first-child"), "history lost on restart"
    assert browser.execute_script("return window.fnudSamePage === true;")


GENERATION_STATUS: dict[str, Any] = {
    "daemon": {"pid": 4242, "phase": "running", "config": "/etc/fnud/fnud.toml", "started": 1.0},
    "app": {"program": "uwsgi", "display": "uWSGI"},
    "programs": {
        "uwsgi": {"state": "RUNNING", "pid": 11, "rss": 1 << 24, "uptime": 75.0, "restarts": 1,
                  "workers": [{"id": 1, "pid": 12, "status": "idle", "requests": 5}]},
        "nginx": {"state": "BACKOFF", "pid": 13, "last_exit": "exited with code 1: bind()"},
    },
    "generation": {
        "number": 7, "release": "/srv/app/releases/7", "state": "settling",
        "previous": {"number": 6, "release": "/srv/app/releases/6", "state": "paused"},
    },
    "last_reload": {"result": "rolled_back", "at": 2.0},
    "reloads": {"ok": 3, "refused": 1, "failed": 0, "rolled_back": 1},
}


@pytest.fixture
def fake_daemon(tmp_path: Path) -> Iterator[str]:
    """The page's server on a loop in a thread, fed a status with what generations add."""
    import asyncio
    import threading

    from supervisor.web.history import History, RequestRates
    from supervisor.web.page import Hooks, WebApp, WebServer

    async def status() -> dict[str, Any]:
        return GENERATION_STATUS

    history = History.in_dir(tmp_path)
    history.record({"result": "ok", "trigger": "touch", "at": 1.0, "duration": 2.5,
                    "message": "4 uWSGI workers replaced", "reason": "touched app/reload"})
    history.record({"result": "rolled_back", "trigger": "cli", "at": 2.0, "duration": 9.0,
                    "message": "5xx rate 40% after the switch: back to generation 6"})
    app = WebApp(Hooks(status, lambda: (True, ""), lambda: (True, ""), lambda: ""),
                 history, RequestRates())
    server = WebServer(app)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever)
    thread.start()
    port = free_port()
    try:
        asyncio.run_coroutine_threadsafe(server.start("127.0.0.1", port), loop).result(10)
        yield f"http://127.0.0.1:{port}/"
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def test_the_page_shows_generations_and_rollbacks(fake_daemon: str, browser: Any) -> None:
    browser.get(fake_daemon)
    wait_for(lambda: "live" in _text(browser, "#conn"), message="the page to render")
    generations = _text(browser, "#generations")
    assert "generation 7" in generations and "/srv/app/releases/7" in generations
    assert "settling" in generations and "generation 6" in generations
    assert "/srv/app/releases/6" in generations
    assert "rolled back 1" in _text(browser, "#counts")
    first = _text(browser, "#timeline li:first-child")
    assert "rolled back" in first and "back to generation 6" in first and "cli" in first
    assert "touch" in _text(browser, "#timeline li:last-child")
    assert "bind()" in _text(browser, "#programs tbody")  # why nginx is not RUNNING
    assert not browser.find_element(By.ID, "actions").is_displayed()  # no token: read-only
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "status-page-generations.png"))
