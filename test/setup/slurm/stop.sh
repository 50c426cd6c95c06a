#!/usr/bin/env bash
# Stops the daemons test/setup/slurm/start.sh started: only the pids it wrote to $STATE_DIR, and only while
# /proc/PID/comm still names that daemon (a reused pid is never signalled). Never kills by name. Jobs still
# running are cancelled through scancel first. --wipe also drops the accounting database and Slurm's job state and
# logs (the packages stay installed), so the next start begins at job id 1.
set -uo pipefail
STATE_DIR="${BURNRATE_SLURM_STATE:-/run/burnrate-slurm-test}"
wipe=0
[ "${1:-}" = "--wipe" ] && wipe=1
[ "$(id -u)" -eq 0 ] || { echo "slurm stop: must run as root" >&2; exit 1; }

running() {
  [ -n "$1" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ] && ! grep -qE '^State:\s*[ZX]' "/proc/$1/status" 2>/dev/null
}
pid_of() { tr -cd 0-9 2>/dev/null <"$STATE_DIR/$1.pid"; }
stop() {
  local name=$1 pid
  [ -r "$STATE_DIR/$name.pid" ] || return 0
  pid=$(pid_of "$name")
  if running "$pid" "$name"; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 100); do running "$pid" "$name" || break; sleep 0.2; done
    running "$pid" "$name" && { echo "slurm stop: $name ($pid) ignored TERM for 20 s; KILL"; kill -KILL "$pid" 2>/dev/null; }
    echo "slurm stop: $name ($pid) stopped"
  fi
  rm -f "$STATE_DIR/$name.pid"
}

if running "$(pid_of slurmctld)" slurmctld; then
  jobs=$(timeout 10 squeue -h -o %A 2>/dev/null | tr '\n' ' ')
  if [ -n "${jobs// /}" ]; then
    timeout 10 scancel $jobs 2>/dev/null
    for _ in $(seq 50); do [ -z "$(timeout 5 squeue -h -t R,CG -o %A 2>/dev/null)" ] && break; sleep 0.2; done
  fi
fi
stop slurmd
stop slurmctld
stop slurmdbd
if [ $wipe -eq 1 ] && running "$(pid_of mariadbd)" mariadbd; then
  mariadb --socket=/run/mysqld/mysqld.sock -e 'DROP DATABASE IF EXISTS slurm_acct_db' || echo "slurm stop: could not drop slurm_acct_db"
fi
stop mariadbd
stop munged
if [ $wipe -eq 1 ]; then
  rm -rf /var/lib/slurm/slurmctld/* /var/lib/slurm/slurmd/* /var/log/slurm/* "$STATE_DIR"/*.log
fi
rmdir "$STATE_DIR" 2>/dev/null || true
exit 0
