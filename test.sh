#!/usr/bin/env bash
# Runs every test of Burnrate on a fresh Debian machine: installs what the tests need, builds, tests.
# Usage: ./test.sh            (CI=true makes tests that need a missing peer fail instead of skip)
set -euo pipefail
cd "$(dirname "$0")"

# Debian packages the tests start as real peers on loopback: Prometheus scrapes exposition fixtures and remote-writes
# to burnrate serve; Chromium (driven by Microsoft.Playwright, no browser download) loads the dashboard, with
# fonts-liberation so screenshots render the same everywhere. Slurm 22.05 with accounting (slurmctld, slurmd, slurmdbd on
# MariaDB, munge) is started by the Slurm tests themselves (test/setup/slurm/start.sh, as root); ClickHouse (18.16 on
# Debian 12) is the scale-out store the store contract runs against (test/Burnrate.Tests/Support/ClickHousePeer.cs starts
# it on loopback ports).
packages=(prometheus prometheus-alertmanager chromium fonts-liberation clickhouse-server zookeeper
  munge slurm-wlm slurmctld slurmd slurm-client slurm-wlm-basic-plugins slurmdbd mariadb-server mariadb-client)
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
  # No init system here, and Debian's clickhouse-server, MariaDB, munge and Slurm would start system services on
  # install: keep maintainer scripts from starting any (the tests start their own on loopback ports).
  policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null && $sudo chmod 755 /usr/sbin/policy-rc.d && policy=1
  fi
  $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  if [ -n "$policy" ]; then $sudo rm -f /usr/sbin/policy-rc.d; fi
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
