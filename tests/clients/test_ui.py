"""The page for people (issue 25) in a real browser: Debian's headless
Chromium driven through chromedriver (`webdriver.py`). Sign in, find a group
created through CF and see it in both dialects, see the change with its
user, see a task in flight during a slow embedded task, sign out — with no
console error and no request leaving the gateway's origin. Screenshots of
each page land in target/ui-screenshots (SGBRIDGE_SCREENSHOTS to change)."""

import os
import pathlib
import time
import uuid

import httpx
import pytest
from cloudfoundry_client.client import CloudFoundryClient

import webdriver

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHOTS = pathlib.Path(os.environ.get("SGBRIDGE_SCREENSHOTS", ROOT / "target" / "ui-screenshots"))
ADMIN = {"authorization": "bearer dev-admin-token"}


@pytest.fixture(scope="module")
def browser():
    if not webdriver.available():
        if os.environ.get("CI") == "true":
            pytest.fail("headless Chromium is missing: .ci/run installs chromium and chromium-driver")
        pytest.skip("headless Chromium is not installed (apt-get install chromium chromium-driver)")
    b = webdriver.Browser()
    yield b
    b.quit()


def settle(browser, url):
    """The browser's URL once a click's navigation has ended there (a click
    returns before the page it leads to has loaded)."""
    for _ in range(100):
        if browser.url == url and browser.script("return document.readyState") == "complete":
            return url
        time.sleep(0.05)
    return browser.url


def page_text(browser, needle, tries=100):
    """The body's text once it shows `needle` (a click returns before the
    page it leads to has loaded; the old page's body goes stale meanwhile)."""
    text = ""
    for _ in range(tries):
        try:
            text = browser.text()
            if needle in text:
                return text
        except webdriver.WebDriverError:
            pass
        time.sleep(0.05)
    return text


def sign_in(browser, base, user="admin", password="admin"):
    browser.go(base + "/ui/login")
    browser.find("css selector", "#username").type(user)
    browser.find("css selector", "#password").type(password)
    browser.find("css selector", "form.login button").click()


def test_the_page_in_a_real_browser(embedded, browser):
    base = embedded.admin_url
    assert base, "the embedded gateway serves the page on its admin listener"

    # A group made through CF by a user who logged in (the gateway's own UAA).
    client = CloudFoundryClient(embedded.url)
    client.init_with_user_credentials("admin", "admin")
    name = f"ui-{uuid.uuid4().hex[:8]}"
    rules = [{"protocol": "tcp", "destination": "10.1.0.0/16", "ports": "443"}]
    created = client.v2.security_groups._create({"name": name, "rules": rules})
    guid = created["metadata"]["guid"]

    browser.go(base + "/ui/groups")
    assert browser.url == base + "/ui/login", "no session: the sign-in form"
    browser.screenshot(SHOTS / "1-sign-in.png")
    sign_in(browser, base, password="wrong")
    assert "Wrong user name or password" in page_text(browser, "Wrong user name"), "the form again, saying why"
    sign_in(browser, base)
    assert settle(browser, base + "/ui/") == base + "/ui/"
    text = browser.text()
    assert "Overview" in text and "embedded" in text and "Replicas alive" in text
    browser.screenshot(SHOTS / "2-overview.png")

    browser.go(base + f"/ui/groups?q={name}")
    browser.screenshot(SHOTS / "3-groups.png")
    browser.find("link text", name).click()
    assert settle(browser, base + f"/ui/groups/1/1/{guid}") == base + f"/ui/groups/1/1/{guid}"
    text = browser.text()
    assert "destination 10.1.0.0/16" in text, text
    assert "remote_ip_prefix 10.1.0.0/16" in text, text
    assert "audit.security_group.create" in text
    browser.screenshot(SHOTS / "4-group.png")

    browser.go(base + f"/ui/changes?group={guid}")
    change = browser.find("css selector", "ol.changes > li").text()
    assert "audit.security_group.create" in change and "admin" in change, change
    assert "+ destination 10.1.0.0/16" in change, change
    browser.screenshot(SHOTS / "5-changes.png")

    # A slow embedded task: in flight on the tasks page while it runs.
    timing = base + "/_emulator/timing"
    r = httpx.put(timing, json={"task_delay_ms": 300, "task_delays_ms": {"security_groups.create": 5000}}, headers=ADMIN)
    assert r.status_code == 200, r.text
    try:
        r = httpx.post(
            embedded.url + "/cloud/v2/security_groups/1/1",
            json={"name": f"slow-{uuid.uuid4().hex[:8]}", "rules": []},
            headers={"authorization": "APIKey dev-api-key"},
        )
        task = r.json()["tasks"][0]
        browser.go(base + "/ui/tasks")
        row = next(row.text() for row in browser.find_all("css selector", "table.tasks tbody tr") if task in row.text())
        assert "RUNNING" in row, row
        browser.screenshot(SHOTS / "6-tasks.png")
        browser.go(base + "/ui/")
        assert task in browser.text(), "the overview lists it in flight"
    finally:
        httpx.put(timing, json={"task_delay_ms": 300}, headers=ADMIN)

    # Readable on a phone: the same page at 390 px.
    browser.set_size(390, 844)
    browser.go(base + f"/ui/groups/1/1/{guid}")
    width = browser.script("return document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width} px wide on a phone"
    browser.screenshot(SHOTS / "7-group-phone.png")
    browser.set_size(1280, 800)

    browser.go(base + "/ui/")
    browser.find("css selector", "form.signout button").click()
    assert settle(browser, base + "/ui/login") == base + "/ui/login"
    browser.go(base + "/ui/tasks")
    assert browser.url == base + "/ui/login", "signed out: refused again"

    severe = [e for e in browser.log("browser") if e.get("level") == "SEVERE"]
    assert not severe, severe
    urls = [u for u in browser.requested_urls() if u.startswith(("http:", "https:", "ws:", "wss:"))]
    assert urls, "the performance log saw the page's requests"
    elsewhere = [u for u in urls if not u.startswith(base + "/")]
    assert not elsewhere, elsewhere

    # With an admin listener, the API listener has no page.
    assert httpx.get(embedded.url + "/ui/login").status_code == 404
    assert httpx.get(embedded.url + "/ui/").status_code == 404
