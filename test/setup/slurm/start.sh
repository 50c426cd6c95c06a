#!/usr/bin/env bash
# Starts a real single-node Slurm cluster for the Slurm connector's tests (test/Burnrate.Tests/Connectors/Slurm):
# Debian's munge, MariaDB, slurmdbd, slurmctld and slurmd as plain daemons, no systemd. One node "localhost" with
# 2 CPUs and 2 fake GPUs (GRES gpu:fake:2 on character devices cloned from /dev/null), partitions "debug" (default)
# and "gpu", accounting in MariaDB over its unix socket, accounts "research" and "physics" (root in both).
#
# Installs the packages it needs when they are missing (test.sh installs them first in CI). Idempotent: with the
# cluster up it only checks it. BURNRATE_SLURM_FRESH=1 first stops what an earlier run started and wipes the job
# state and the accounting database, so job ids restart at 1 and no job of an earlier, killed run comes back.
# Exits 0 only when the node is IDLE and an srun job ran; otherwise prints "slurm setup failed: ..." and the logs.
# The pids of the daemons started here are written to $STATE_DIR/*.pid; stop.sh stops exactly those.
# Needs root. Ports: 6817-6819 on loopback; MariaDB has no TCP port.
set -Eeuo pipefail

STATE_DIR="${BURNRATE_SLURM_STATE:-/run/burnrate-slurm-test}"
FRESH="${BURNRATE_SLURM_FRESH:-0}"
CLUSTER=burnrate-test
NODE=localhost
GPUS=2
DB_PASSWORD=burnrate-test-only   # socket-only database of a throwaway test cluster
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LOGS=/var/log/slurm

say() { echo "[slurm setup] $*"; }
logs() {
  local f
  for f in $LOGS/slurmctld.log $LOGS/slurmd.log $LOGS/slurmdbd.log /var/log/munge/munged.log /var/log/mysql/burnrate-test.err; do
    if [ -s "$f" ]; then echo "--- $f" >&2; tail -n 12 "$f" >&2; fi
  done
}
fail() { echo "slurm setup failed: $*" >&2; logs; exit 1; }
trap 'fail "line $LINENO: $BASH_COMMAND"' ERR

[ "$(id -u)" -eq 0 ] || fail "must run as root (the daemons run as root, munge and slurm)"

packages=(munge slurm-wlm slurmctld slurmd slurm-client slurm-wlm-basic-plugins slurmdbd mariadb-server mariadb-client)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  # No init system here: keep the packages' maintainer scripts from starting services.
  policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; policy=1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/tmp/burnrate-slurm-apt.log 2>&1 \
    || { tail -n 20 /tmp/burnrate-slurm-apt.log >&2; [ $policy -eq 1 ] && rm -f /usr/sbin/policy-rc.d; fail "apt-get install"; }
  [ $policy -eq 1 ] && rm -f /usr/sbin/policy-rc.d
fi

if [ "$FRESH" = 1 ]; then
  BURNRATE_SLURM_STATE="$STATE_DIR" "$HERE/stop.sh" --wipe | sed 's/^/  /'
fi
mkdir -p "$STATE_DIR"

# running PID NAME: a live process (not a zombie: pid 1 here reaps late) whose name is NAME.
running() {
  [ -n "$1" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ] && ! grep -qE '^State:\s*[ZX]' "/proc/$1/status" 2>/dev/null
}
retry() { # SECONDS WHAT COMMAND...
  local until=$(( $(date +%s) + $1 )) what=$2; shift 2
  while ! "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$until" ] || fail "gave up after waiting for $what"
    sleep 0.3
  done
}
# daemon NAME PIDFILE COMMAND...: start COMMAND unless its pid file names a live NAME; record the pid.
daemon() {
  local name=$1 pidfile=$2 pid=""; shift 2
  [ -r "$pidfile" ] && pid=$(tr -cd 0-9 <"$pidfile")
  if running "$pid" "$name"; then return 0; fi
  rm -f "$pidfile"
  # Close inherited descriptors above 2 first: a daemon holding the test runner's pipe keeps it from ever ending.
  (
    for fd in /proc/$BASHPID/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null || true; done
    cd / && exec setsid "$@" </dev/null >>"$STATE_DIR/$name.log" 2>&1
  ) &
  local starter=$! until=$(( $(date +%s) + 30 ))
  while true; do
    [ -r "$pidfile" ] && pid=$(tr -cd 0-9 <"$pidfile") && running "$pid" "$name" && break
    if ! kill -0 "$starter" 2>/dev/null; then
      local rc=0; wait "$starter" || rc=$?
      [ $rc -eq 0 ] || { tail -n 5 "$STATE_DIR/$name.log" >&2; fail "$name exited with $rc while starting"; }
    fi
    [ "$(date +%s)" -lt "$until" ] || { tail -n 5 "$STATE_DIR/$name.log" >&2; fail "$name did not write a live pid to $pidfile"; }
    sleep 0.2
  done
  echo "$pid" >"$STATE_DIR/$name.pid"
  say "$name running (pid $pid)"
}

# munge: the authentication every Slurm daemon and client uses.
install -d -o munge -g munge -m 0755 /run/munge
install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge
[ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null \
  || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
daemon munged /run/munge/munged.pid runuser -u munge -- /usr/sbin/munged --force
retry 15 "munge" bash -c 'munge -n | unmunge'

# Fake GPUs: slurmd insists on character or block devices; clones of /dev/null (1:3) are enough for scheduling.
for i in $(seq 0 $((GPUS - 1))); do
  [ -c /dev/fakegpu$i ] || { rm -f /dev/fakegpu$i; mknod -m 0666 /dev/fakegpu$i c 1 3 2>/dev/null || ln -s /dev/null /dev/fakegpu$i; }
done

install -d -o slurm -g slurm -m 0755 $LOGS /run/slurm /var/lib/slurm/slurmctld /var/lib/slurm/slurmd
install -d -m 0755 /etc/slurm
changed=0
# put FILE MODE OWNER < content: replace FILE when its content differs; returns 0 when it did.
put() {
  local tmp; tmp=$(mktemp); cat >"$tmp"
  if [ -f "$1" ] && cmp -s "$tmp" "$1"; then rm -f "$tmp"; return 1; fi
  install -m "$2" -o "${3%:*}" -g "${3#*:}" "$tmp" "$1"; rm -f "$tmp"
}
put /etc/slurm/slurm.conf 0644 root:root <<EOF2 && changed=1 || true
# written by burnrate test/setup/slurm/start.sh
ClusterName=$CLUSTER
SlurmctldHost=localhost
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MinJobAge=300
KillWait=5
InactiveLimit=0
Waittime=0
GresTypes=gpu
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
AccountingStorageEnforce=associations
AccountingStorageTRES=gres/gpu
AccountingStoreFlags=job_comment
JobCompType=jobcomp/none
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=2 RealMemory=1024 Gres=gpu:fake:$GPUS State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES DefaultTime=01:00:00 MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$NODE Default=NO DefaultTime=01:00:00 MaxTime=INFINITE State=UP
EOF2
put /etc/slurm/gres.conf 0644 root:root <<EOF2 && changed=1 || true
NodeName=$NODE Name=gpu Type=fake File=/dev/fakegpu[0-$((GPUS - 1))]
EOF2

# MariaDB (socket only) and slurmdbd: what sacct reads.
install -d -o mysql -g root -m 0755 /run/mysqld
install -d -o mysql -g adm -m 2750 /var/log/mysql
if [ ! -d /var/lib/mysql/mysql ]; then
  mariadb-install-db --user=mysql --datadir=/var/lib/mysql >"$STATE_DIR/mariadb-install.log" 2>&1 || fail "mariadb-install-db"
fi
daemon mariadbd /run/mysqld/mysqld.pid /usr/sbin/mariadbd --user=mysql --skip-networking --socket=/run/mysqld/mysqld.sock \
  --pid-file=/run/mysqld/mysqld.pid --log-error=/var/log/mysql/burnrate-test.err --innodb-buffer-pool-size=128M
retry 60 "mariadb" mariadb-admin --socket=/run/mysqld/mysqld.sock ping
if [ "$FRESH" = 1 ]; then
  # Job ids restart at 1 with the wiped job state: the accounting of earlier runs must go too, or sacct shows both.
  mariadb --socket=/run/mysqld/mysqld.sock -e 'DROP DATABASE IF EXISTS slurm_acct_db'
fi
mariadb --socket=/run/mysqld/mysqld.sock <<EOF2
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASSWORD';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
EOF2
put /etc/slurm/slurmdbd.conf 0600 slurm:slurm <<EOF2 || true
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=slurm
PidFile=/run/slurm/slurmdbd.pid
LogFile=$LOGS/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$DB_PASSWORD
StorageLoc=slurm_acct_db
EOF2
daemon slurmdbd /run/slurm/slurmdbd.pid /usr/sbin/slurmdbd
retry 60 "slurmdbd" sacctmgr -n list cluster
sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER" || sacctmgr -i add cluster "$CLUSTER" >/dev/null
for account in research physics; do
  sacctmgr -n -P list account "$account" format=account | grep -qx "$account" \
    || sacctmgr -i add account "$account" cluster="$CLUSTER" description="$account" organization=burnrate-test >/dev/null
done
sacctmgr -n -P list assoc user=root account=physics format=user | grep -qx root \
  || sacctmgr -i add user root account=research,physics defaultaccount=research cluster="$CLUSTER" >/dev/null

# slurmctld and slurmd; a changed config restarts the ones started here.
if [ $changed -eq 1 ]; then
  for d in slurmd slurmctld; do
    pid=$(tr -cd 0-9 2>/dev/null <"$STATE_DIR/$d.pid" || true)
    if running "$pid" "$d"; then
      kill -TERM "$pid"
      for _ in $(seq 50); do running "$pid" "$d" || break; sleep 0.2; done
      running "$pid" "$d" && kill -KILL "$pid"
      rm -f "$STATE_DIR/$d.pid"
    fi
  done
fi
daemon slurmctld /run/slurm/slurmctld.pid /usr/sbin/slurmctld
retry 60 "slurmctld" bash -c 'scontrol ping | grep -q "is UP"'
daemon slurmd /run/slurm/slurmd.pid /usr/sbin/slurmd -N "$NODE"

until=$(( $(date +%s) + 60 ))
while true; do
  state=$(scontrol show node "$NODE" -o 2>/dev/null | sed -n 's/.* State=\([^ ]*\).*/\1/p')
  case "$state" in
    IDLE*|MIXED*|ALLOCATED*) break ;;
    *DRAIN*|DOWN*) scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true ;;
  esac
  [ "$(date +%s)" -lt "$until" ] || fail "node $NODE is '$state', not IDLE"
  sleep 0.5
done
out=$(timeout 60 srun -N1 -n1 -t 1 --job-name=burnrate-setup-check true 2>&1) || fail "srun check: $out"
say "cluster $CLUSTER is up: $(sinfo -h -o '%P %t %G' | tr '\n' ' ')"
