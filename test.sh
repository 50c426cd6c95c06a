#!/usr/bin/env bash
# Runs every test of Burnrate on a fresh Debian machine: installs what the tests need, builds, tests.
# Usage: ./test.sh            (CI=true makes tests that need a missing peer fail instead of skip)
set -euo pipefail
cd "$(dirname "$0")"

need_apt=()
# Peers the tests start on loopback. (Issue 2 needs none; later issues add prometheus, clickhouse-server, ...)
for pkg in "${BURNRATE_TEST_PACKAGES[@]:-}"; do
  [ -n "$pkg" ] || continue
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "==> installing ${need_apt[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi

if [ ! -d ../shared/data ]; then
  echo "warning: ../shared/data is missing; tests that read real catalog files will fail" >&2
fi

echo "==> building"
dotnet build Burnrate.slnx -c Release -warnaserror -nologo -v quiet

echo "==> testing"
log=$(mktemp)
set +e
dotnet test --solution Burnrate.slnx -c Release --no-build 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
total=$(grep -Eo 'succeeded: [0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
failed=$(grep -Eo 'failed: [0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
skipped=$(grep -Eo 'skipped: [0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
rm -f "$log"
echo "tests: ${total} passed, ${failed} failed, ${skipped} skipped"
exit "$rc"
