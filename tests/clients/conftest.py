"""Start real sgbridge binaries for the client suites.

SGBRIDGE_BIN names the binary (default: target/debug/sgbridge, which
`cargo test` builds). Every gateway listens on an ephemeral loopback port.
"""

import os
import pathlib
import subprocess
import tempfile
import threading

import httpx
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = os.environ.get("SGBRIDGE_BIN", str(ROOT / "target" / "debug" / "sgbridge"))

# Spaces the CF front end knows (binds are checked against them).
SPACES = ("8d4b5c3e-0000-4000-8000-000000000001", "8d4b5c3e-0000-4000-8000-000000000002")

# Embedded backend with tasks that really run for a moment; its emulator
# controls (faults) on an admin listener.
EMBEDDED = f"""
[server]
admin_listen = "127.0.0.1:0"
[[cf.orgs]]
guid = "8d4b5c3e-0000-4000-8000-0000000000aa"
name = "org"
[[cf.spaces]]
guid = "{SPACES[0]}"
name = "dev"
org_guid = "8d4b5c3e-0000-4000-8000-0000000000aa"
[[cf.spaces]]
guid = "{SPACES[1]}"
name = "prod"
org_guid = "8d4b5c3e-0000-4000-8000-0000000000aa"
[backend.embedded]
task_delay_ms = 300
[wait]
first_poll_ms = 50
max_poll_ms = 200
deadline_s = 20
"""

# CF and Gcore front ends over backend = gcore, pointed at another gateway.
CHAINED = """
[wait]
first_poll_ms = 50
max_poll_ms = 200
deadline_s = 20
[backend]
kind = "gcore"
[backend.gcore]
base_url = "{base}"
project_id = 1
region_id = 76
api_key_env = "SGBRIDGE_CLIENTS_GCORE_KEY"
"""

# Gcore and CF front ends over backend = cf: a Cloud Controller's v3 API,
# here the embedded gateway's.
CF_BACKED = """
[cf]
region_id = 76
[wait]
first_poll_ms = 50
max_poll_ms = 200
deadline_s = 20
[backend]
kind = "cf"
[backend.cf]
api_url = "{base}"
token_env = "SGBRIDGE_CLIENTS_CC_TOKEN"
request_timeout_s = 10
"""


class Gateway:
    def __init__(self, config: str, env: dict | None = None):
        self._dir = tempfile.TemporaryDirectory()
        path = pathlib.Path(self._dir.name) / "sgbridge.toml"
        path.write_text(config)
        self.proc = subprocess.Popen(
            [BIN, "serve", "--config", str(path), "--listen", "127.0.0.1:0"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.log: list[str] = []
        self.url = None
        self.admin_url = None
        for line in self.proc.stderr:
            self.log.append(line)
            if "admin endpoints on " in line:
                self.admin_url = line.split("admin endpoints on ")[1].split()[0]
            if "listening on " in line:
                self.url = line.split("listening on ")[1].split()[0]
                break
        if self.url is None:
            raise RuntimeError("sgbridge did not start:\n" + "".join(self.log))
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.proc.stderr:
            self.log.append(line)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._dir.cleanup()


@pytest.fixture(scope="session")
def embedded():
    gw = Gateway(EMBEDDED)
    yield gw
    gw.stop()


@pytest.fixture(scope="session")
def chained(embedded):
    """sgbridge with backend = gcore, pointed at the embedded gateway."""
    gw = Gateway(CHAINED.format(base=embedded.url), env={"SGBRIDGE_CLIENTS_GCORE_KEY": "dev-api-key"})
    yield gw
    gw.stop()


@pytest.fixture(scope="session")
def cf_backed(embedded):
    """sgbridge with backend = cf, pointed at the embedded gateway's CF v3 API."""
    gw = Gateway(CF_BACKED.format(base=embedded.url), env={"SGBRIDGE_CLIENTS_CC_TOKEN": "dev-admin-token"})
    yield gw
    gw.stop()


class Faults:
    """The emulator's fault API of a gateway on the embedded backend
    (`/_emulator/faults` on its admin listener, admin credentials)."""

    def __init__(self, gw: Gateway):
        assert gw.admin_url, "the gateway has no admin listener"
        self.url = gw.admin_url + "/_emulator"
        self.headers = {"authorization": "bearer dev-admin-token"}

    def arm(self, *faults: dict) -> None:
        r = httpx.put(self.url + "/faults", json={"faults": list(faults)}, headers=self.headers)
        assert r.status_code == 200, r.text

    def hits(self) -> list[int]:
        r = httpx.get(self.url + "/faults", headers=self.headers)
        return [f["hits"] for f in r.json()["faults"]]

    def clear(self) -> None:
        httpx.delete(self.url + "/faults", headers=self.headers)


@pytest.fixture
def faults(embedded):
    """Faults on the embedded gateway, cleared after the test."""
    f = Faults(embedded)
    f.clear()
    yield f
    f.clear()
