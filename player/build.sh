#!/usr/bin/env bash
# Re-vendor the player libraries after changing the versions in package.json:
# installs exactly what package-lock.json pins (no install scripts run), copies
# the dist files into vendor/ and rewrites vendor.lock.json with their checksums.
# Not needed to run the project: vendor/ is committed.
set -euo pipefail
cd "$(dirname "$0")"
if [[ "${1:-}" == "--update" ]]; then
  npm install --package-lock-only --ignore-scripts --no-audit --no-fund
fi
npm ci --ignore-scripts --no-audit --no-fund
python3 vendor.py sync
python3 vendor.py verify
