#!/usr/bin/env bash
# The project's test command (README): unit, conformance, property and
# end-to-end tests against the real binary.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --locked --all-targets
