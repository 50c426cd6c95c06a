#!/usr/bin/env bash
# Alert soak: plays the healthy baseline fleet (30 nodes, 156 GPUs, 7 clouds) through the real rating pipeline and the
# built-in alert rules for a whole simulated week from Friday 18:00 (weeknights, the weekend, business days) and fails
# if any default rule fires: the "never cries wolf" check, too long for the default test run (which plays 12 hours).
#
# Usage: benchmark/alert-soak.sh [HOURS]      HOURS defaults to 168 (a week: about 2 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
hours="${1:-168}"
echo "==> playing ${hours} simulated hours of the healthy baseline through the default alert rules" >&2
BURNRATE_SOAK_HOURS="$hours" exec dotnet test --solution Burnrate.slnx -c Release -- \
  --filter-method "*The_healthy_baseline_fleet_fires_no_default_rule_over_a_friday_night_into_the_weekend*" --output detailed
