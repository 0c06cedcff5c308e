"""A small W3C WebDriver client over urllib, for Debian's chromedriver.

Selenium would bring its own dependencies and a driver manager that tries to
download drivers; the handful of commands the page's tests need are plain
JSON over HTTP (https://www.w3.org/TR/webdriver2/).
"""

import base64
import json
import pathlib
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"

# Chromium quiet on a closed network: no background connections, no
# component updates, no sync (see the machine notes on browser tests).
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def available() -> bool:
    return pathlib.Path(CHROMIUM).exists() and pathlib.Path(CHROMEDRIVER).exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebDriverError(RuntimeError):
    pass


class Browser:
    """One headless Chromium session driven through chromedriver."""

    def __init__(self, width: int = 1280, height: int = 800):
        self.port = _free_port()
        self.driver = subprocess.Popen(
            [CHROMEDRIVER, f"--port={self.port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.base = f"http://127.0.0.1:{self.port}"
        for _ in range(200):
            try:
                self._call("GET", "/status")
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.05)
        else:
            raise WebDriverError("chromedriver did not start")
        self.profile = tempfile.TemporaryDirectory()
        caps = {
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": CHROMIUM,
                        "args": ARGS + [f"--user-data-dir={self.profile.name}", f"--window-size={width},{height}"],
                    },
                    "goog:loggingPrefs": {"browser": "ALL", "performance": "ALL"},
                }
            }
        }
        self.session = self._call("POST", "/session", caps)["sessionId"]

    def _call(self, method: str, path: str, body: dict | None = None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("content-type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return json.loads(r.read() or b"{}").get("value")
        except urllib.error.HTTPError as e:
            raise WebDriverError(f"{method} {path}: {e.code} {e.read()[:500]!r}") from e

    def _s(self, method: str, path: str, body: dict | None = None):
        return self._call(method, f"/session/{self.session}{path}", body)

    def go(self, url: str) -> None:
        self._s("POST", "/url", {"url": url})

    @property
    def url(self) -> str:
        return self._s("GET", "/url")

    def text(self) -> str:
        return self.find("css selector", "body").text()

    def find(self, using: str, value: str) -> "Element":
        found = self._s("POST", "/element", {"using": using, "value": value})
        return Element(self, found[ELEMENT])

    def find_all(self, using: str, value: str) -> list["Element"]:
        found = self._s("POST", "/elements", {"using": using, "value": value})
        return [Element(self, f[ELEMENT]) for f in found]

    def script(self, source: str, *args):
        return self._s("POST", "/execute/sync", {"script": source, "args": list(args)})

    def screenshot(self, path: pathlib.Path) -> None:
        png = base64.b64decode(self._s("GET", "/screenshot"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)

    def set_size(self, width: int, height: int) -> None:
        self._s("POST", "/window/rect", {"width": width, "height": height})

    def log(self, kind: str) -> list[dict]:
        """The browser's `browser` (console) or `performance` log since the last read."""
        return self._s("POST", "/se/log", {"type": kind}) or []

    def requested_urls(self) -> list[str]:
        urls = []
        for entry in self.log("performance"):
            message = json.loads(entry["message"])["message"]
            if message.get("method") == "Network.requestWillBeSent":
                urls.append(message["params"]["request"]["url"])
        return urls

    def quit(self) -> None:
        try:
            self._s("DELETE", "")
        finally:
            self.driver.terminate()
            self.driver.wait(timeout=10)
            self.profile.cleanup()


class Element:
    def __init__(self, browser: Browser, id: str):
        self.browser = browser
        self.id = id

    def _e(self, method: str, path: str, body: dict | None = None):
        return self.browser._s(method, f"/element/{self.id}{path}", body)

    def click(self) -> None:
        self._e("POST", "/click", {})

    def type(self, text: str) -> None:
        self._e("POST", "/clear", {})
        self._e("POST", "/value", {"text": text})

    def text(self) -> str:
        return self._e("GET", "/text")

    def attribute(self, name: str):
        return self._e("GET", f"/attribute/{name}")
