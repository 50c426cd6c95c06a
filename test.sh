#!/usr/bin/env bash
# Runs every test of Burnrate on a fresh Debian machine: installs what the tests need, builds, tests.
# Usage: ./test.sh            (CI=true makes tests that need a missing peer fail instead of skip)
set -euo pipefail
cd "$(dirname "$0")"

# Debian packages the tests start as real peers on loopback: Prometheus scrapes exposition fixtures and remote-writes
# to burnrate serve; Chromium (driven by Microsoft.Playwright, no browser download) loads the dashboard, with
# fonts-liberation so screenshots render the same everywhere; ClickHouse (18.16 on Debian 12) is the scale-out store
# the store contract runs against (test/Burnrate.Tests/Support/ClickHousePeer.cs starts it on loopback ports).
packages=(prometheus prometheus-alertmanager chromium fonts-liberation clickhouse-server)
# The build itself runs `npm ci` for the dashboard's chart library (src/Burnrate.Server/dashboard): npm must be there.
command -v npm >/dev/null 2>&1 || packages+=(npm)
missing=()
for pkg in "${packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  # Debian's clickhouse-server would start a system server on 8123/9000 when installed; the tests start their own on
  # free loopback ports, so service starts are refused while installing (only if no policy is in place already).
  made_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null && $sudo chmod +x /usr/sbin/policy-rc.d && made_policy=1
  fi
  $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  [ -z "$made_policy" ] || $sudo rm -f /usr/sbin/policy-rc.d
fi

if ! command -v dotnet >/dev/null 2>&1; then
  echo "error: the .NET SDK (dotnet) is not on PATH; install the .NET 10 SDK" >&2
  exit 1
fi
if [ ! -d ../shared/data ]; then
  echo "warning: ../shared/data is missing; tests that read real catalog files skip (and fail under CI=true)" >&2
fi

echo "==> building (Release, warnings as errors)"
dotnet build Burnrate.slnx -c Release -warnaserror -nologo -v quiet

echo "==> checking style (dotnet format --verify-no-changes)"
dotnet format Burnrate.slnx --verify-no-changes --no-restore -v quiet

echo "==> testing"
log=$(mktemp)
set +e
dotnet test --solution Burnrate.slnx -c Release --no-build 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
passed=$(grep -Eo 'succeeded: [0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
failed=$(grep -Eo '^\s*failed: [0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
skipped=$(grep -Eo 'skipped: [0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
rm -f "$log"
echo "${passed} passed, ${failed} failed, ${skipped} skipped"
exit "$rc"
