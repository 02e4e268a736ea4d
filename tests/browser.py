"""What the tests that drive Debian's Chromium share: the driver, the site's gestures, logins,
and axe-core, the accessibility engine (its script comes from a pinned pip package, so nothing
is downloaded while the tests run)."""

from __future__ import annotations

import importlib.util
import re
import shutil
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import pytest
from django.conf import settings as conf
from django.contrib.auth.models import Group, User
from django.core.signals import request_started

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PASSWORD = "correct horse battery"

BROWSER_TEST = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not (CHROMIUM and CHROMEDRIVER),
        reason="Chromium and chromedriver are not installed (apt-get install chromium chromium-driver)",
    ),
]


def chromium(window_size: tuple[int, int] = (1400, 1100)):
    """Debian's headless Chromium, through Debian's chromedriver (no browser downloads)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        "--window-size={},{}".format(*window_size),
    ):
        options.add_argument(flag)
    # The console's messages, for csp_violations (Chromium reports each blocked script there).
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(5)
    return driver


class Site:
    """The browser on the live server, with the few gestures the tests need."""

    def __init__(self, driver, base_url: str):
        self.driver, self.base_url = driver, base_url
        self.csp_unread: list[str] = []  # the site's violations read before axe ran
        ARTIFACTS.mkdir(exist_ok=True)

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def css(self, selector: str):
        return self.driver.find_element("css selector", selector)

    def text(self) -> str:
        return self.css("body").text

    def click(self, selector: str) -> None:
        self.css(selector).click()

    def submit(self, selector: str) -> None:
        """Click a submit button and wait for the next page to load."""
        from selenium.webdriver.support.ui import WebDriverWait

        old_page = self.css("html")
        self.css(selector).click()
        WebDriverWait(self.driver, 20).until(
            lambda d: old_page.id != d.find_element("css selector", "html").id
        )

    def shot(self, name: str, folder: Path = ARTIFACTS, selector: str = "") -> Path:
        """The window, or only the element `selector` finds (scrolled into view)."""
        path = folder / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        if selector:
            element = self.css(selector)
            self.driver.execute_script("arguments[0].scrollIntoView()", element)
            element.screenshot(str(path))
        else:
            self.driver.save_screenshot(str(path))
        return path

    def viewport(self, width: int, height: int) -> None:
        """Make the page's viewport (window.innerWidth × innerHeight) exactly this size."""
        self.driver.set_window_size(width, height)
        inner = self.driver.execute_script("return [window.innerWidth, window.innerHeight]")
        if inner != [width, height]:  # the window's frame takes some: add it
            self.driver.set_window_size(2 * width - inner[0], 2 * height - inner[1])
            inner = self.driver.execute_script("return [window.innerWidth, window.innerHeight]")
        assert inner == [width, height], f"the viewport is {inner}, not {[width, height]}"

    def color_scheme(self, scheme: str) -> None:
        """Show the pages as a browser set to a "dark" or "light" theme would."""
        self.driver.execute_cdp_cmd(
            "Emulation.setEmulatedMedia",
            {"features": [{"name": "prefers-color-scheme", "value": scheme}]},
        )

    def csp_violations(self) -> list[str]:
        """What the Content-Security-Policy blocked since the last call, on every page opened
        since (Chromium's console keeps them across pages until they are read)."""
        unread, self.csp_unread = self.csp_unread, []
        return unread + [
            entry["message"]
            for entry in self.driver.get_log("browser")
            if "Content Security Policy" in entry["message"]
        ]

    def csp_header(self) -> str:
        """The policy the open page's address answers with, as the browser receives it."""
        return self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch(location.href, {credentials: 'same-origin'})"
            "  .then(r => done(r.headers.get('Content-Security-Policy') || ''), () => done(''));"
        )

    def log_in(self, username: str) -> None:
        self.open("/admin/login/")
        self.css("#id_username").send_keys(username)
        self.css("#id_password").send_keys(PASSWORD)
        self.submit("input[type=submit]")
        assert "Log out" in self.text() or "LOG OUT" in self.text().upper()

    def log_out(self) -> None:
        self.submit("#logout-form button")

    def wait_for(self, selector: str, timeout: float = 60) -> None:
        """Until the page (which follows a job by reloading itself) shows `selector`."""
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(self.driver, timeout, poll_frequency=0.2).until(
            lambda d: d.find_elements("css selector", selector)
        )

    def import_csv(self, csv_path: Path, zip_path: Path) -> str:
        """Upload through the page's script (the files in slices, one request each); the
        import's page follows the worker's check until the preview is ready."""
        self.open("/admin/catalog/product/import/")
        assert self.css("#catalog-import-form").get_attribute("data-sliced") == "ready"
        self.css("input[name=csv_file]").send_keys(str(csv_path))
        self.css("input[name=images_zip]").send_keys(str(zip_path))
        with requests_seen() as paths:
            self.submit("#catalog-import-form input[type=submit]")
        assert "/admin/catalog/catalogimport/" in self.driver.current_url
        slices = [path for path in paths if re.search(r"/import/uploads/\w+/\w+/\d+/$", path)]
        assert len(slices) == slice_count(csv_path) + slice_count(zip_path), paths
        assert "/admin/catalog/product/import/" not in paths  # not the form's one POST
        self.wait_for("#catalog-import-confirm")
        return self.css("#import-summary").text

    def confirm_import(self) -> str:
        """Confirm; the page follows the write until the import is done."""
        self.submit("#catalog-import-confirm input[type=submit]")
        self.wait_for(".import-job[data-state=done]")
        return self.css("#import-summary").text

    def axe(self) -> list[dict]:
        """axe-core's violations on the open page (every rule axe runs by default). The CSP
        blocks the <style> elements axe's colour checks add on some pages: those reports are
        axe's, not the site's, and are dropped (the page's own are kept for csp_violations)."""
        self.csp_unread = self.csp_violations()
        if not self.driver.execute_script("return typeof window.axe === 'object'"):
            self.driver.execute_script(axe_source())
        self.driver.set_script_timeout(60)
        violations = self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document, {resultTypes: ['violations']})"
            "  .then(results => done(results.violations), error => done([{id: 'axe-error',"
            "    impact: 'critical', help: String(error), nodes: []}]));"
        )
        self.driver.get_log("browser")
        return violations


@contextmanager
def requests_seen():
    """The paths of the requests the live server answers meanwhile."""
    paths = []

    def seen(environ, **kwargs):
        paths.append(environ["PATH_INFO"])

    request_started.connect(seen)
    try:
        yield paths
    finally:
        request_started.disconnect(seen)


def slice_count(path: Path) -> int:
    return -(-path.stat().st_size // conf.CATALOG_IMPORT_SLICE_BYTES)


def user(username: str, group: str) -> User:
    account = User.objects.create_user(username, password=PASSWORD, is_staff=True)
    account.groups.add(Group.objects.get(name=group))
    return account


@cache
def axe_source() -> str:
    """axe.min.js as the axe-playwright-python wheel ships it (see requirements.txt). Found
    without importing that package, which would import Playwright: only the script is used."""
    spec = importlib.util.find_spec("axe_playwright_python")
    assert spec and spec.submodule_search_locations, "pip install -r requirements.txt"
    return (Path(spec.submodule_search_locations[0]) / "axe.min.js").read_text()


BLOCKING_IMPACTS = ("serious", "critical")


def axe_report(page: str, violations: list[dict]) -> list[str]:
    """One line per serious or critical violation: rule, impact, where, why (for the first
    element) and what to do."""
    lines = []
    for violation in violations:
        if violation.get("impact") not in BLOCKING_IMPACTS:
            continue
        targets = [" ".join(map(str, node.get("target", []))) for node in violation["nodes"]]
        shown = ", ".join(targets[:5]) + (
            f" and {len(targets) - 5} more" if len(targets) > 5 else ""
        )
        why = next(
            (
                check["message"]
                for node in violation["nodes"][:1]
                for key in ("any", "all", "none")
                for check in node.get(key) or []
                if check.get("message")
            ),
            "",
        )
        lines.append(
            f"{page}: {violation['id']} ({violation['impact']}) at {shown or 'the page'}:"
            f" {violation['help']}" + (f" ({why})" if why else "")
        )
    return lines
