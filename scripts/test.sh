#!/usr/bin/env bash
# The project's test command (README): the Rust suites (unit, conformance,
# properties, end to end over loopback HTTP), then the real-client suites
# (the official Gcore SDK and cloudfoundry-client, pinned, in .venv) against
# the sgbridge binary that cargo just built.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --locked --all-targets

export PIP_DISABLE_PIP_VERSION_CHECK=1
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet -r tests/clients/requirements.txt
SGBRIDGE_BIN="$PWD/target/debug/sgbridge" .venv/bin/python -m pytest -q tests/clients
