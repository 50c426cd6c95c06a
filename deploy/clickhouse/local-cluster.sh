#!/usr/bin/env bash
# Starts or stops throw-away ClickHouse servers on this machine for Burnrate's scale-out store: one server, two shards,
# or two shards x two replicas with a ZooKeeper. Every server listens on 127.0.0.1 only, keeps its data under DIR and
# is stopped by the pid recorded there (never by name). Tested with Debian 12's clickhouse-server 18.16.1.
#
#   deploy/clickhouse/local-cluster.sh start single|shards|replicated DIR   prints the storage: section for burnrate.yaml
#   deploy/clickhouse/local-cluster.sh stop DIR
#
# Ports: server i gets HTTP CH_HTTP_PORT+i (default 18123), native TCP CH_TCP_PORT+i (19000) and interserver
# CH_INTERSERVER_PORT+i (19100); ZooKeeper CH_ZK_PORT (12181). Packages: clickhouse-server, and zookeeper (not
# zookeeperd, which is a system service) for 'replicated'; install them with apt-get first.
# The cluster is named 'burnrate' in every mode, with macros shard=01|02 and replica=r1|r2.
set -euo pipefail

cmd="${1:-}"; shift || true
HTTP="${CH_HTTP_PORT:-18123}"; TCP="${CH_TCP_PORT:-19000}"; ISRV="${CH_INTERSERVER_PORT:-19100}"; ZK="${CH_ZK_PORT:-12181}"
say() { echo "[local-cluster] $*" >&2; }
fail() { say "error: $*"; exit 1; }

mine() { # pid alive and started with a path under DIR
  [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' < "/proc/$1/cmdline" | grep -qF "$2/"
}

stop_all() {
  local dir pidfile pid
  dir="$(cd "$1" && pwd)"
  [ -f "$dir/.burnrate-clickhouse" ] || fail "$dir was not made by this script"
  # ClickHouse first, ZooKeeper last (servers flush to it on the way down).
  for pidfile in "$dir"/ch*.pid "$dir"/zk.pid; do
    [ -f "$pidfile" ] || continue
    pid="$(cat "$pidfile")"
    if [[ "$pid" =~ ^[0-9]+$ ]] && mine "$pid" "$dir"; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 300); do mine "$pid" "$dir" || break; sleep 0.1; done
      mine "$pid" "$dir" && { say "pid $pid did not stop in 30 s; killing"; kill -KILL "$pid" 2>/dev/null || true; }
    fi
    rm -f "$pidfile"
  done
  say "stopped the servers of $dir (data kept; rm -rf it to start afresh)"
}

busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

server_config() { # index shard replica shards replicas use_zk dir
  local i=$1 shard=$2 replica=$3 shards=$4 replicas=$5 zk=$6 d=$7 s r idx
  {
    cat <<EOF
<?xml version="1.0"?>
<yandex>
    <logger><level>warning</level><log>$d/log/server.log</log><errorlog>$d/log/error.log</errorlog><size>100M</size><count>2</count></logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>$((HTTP + i))</http_port>
    <tcp_port>$((TCP + i))</tcp_port>
    <interserver_http_port>$((ISRV + i))</interserver_http_port>
    <interserver_http_host>127.0.0.1</interserver_http_host>
    <path>$d/data/</path>
    <tmp_path>$d/data/tmp/</tmp_path>
    <user_files_path>$d/data/user_files/</user_files_path>
    <format_schema_path>$d/data/format_schemas/</format_schema_path>
    <users_config>$d/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
    <mark_cache_size>268435456</mark_cache_size>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <max_table_size_to_drop>0</max_table_size_to_drop>
    <max_partition_size_to_drop>0</max_partition_size_to_drop>
    <macros><shard>$shard</shard><replica>$replica</replica></macros>
    <remote_servers>
        <burnrate>
EOF
    for ((s = 0; s < shards; s++)); do
      echo "            <shard>"
      # With replicas, the replicated tables copy each insert themselves: Distributed writes to one replica only.
      echo "                <internal_replication>$([ "$replicas" -gt 1 ] && echo true || echo false)</internal_replication>"
      for ((r = 0; r < replicas; r++)); do
        idx=$((s * replicas + r))
        echo "                <replica><host>127.0.0.1</host><port>$((TCP + idx))</port></replica>"
      done
      echo "            </shard>"
    done
    echo "        </burnrate>"
    echo "    </remote_servers>"
    if [ "$zk" = 1 ]; then
      echo "    <zookeeper><node><host>127.0.0.1</host><port>$ZK</port></node><session_timeout_ms>30000</session_timeout_ms></zookeeper>"
      echo "    <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>"
    fi
    echo "</yandex>"
  } > "$d/config.xml"
  cat > "$d/users.xml" <<'EOF'
<?xml version="1.0"?>
<yandex>
    <profiles><default><max_memory_usage>4000000000</max_memory_usage><load_balancing>in_order</load_balancing></default></profiles>
    <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>default</profile><quota>default</quota></default></users>
    <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
EOF
}

start_all() {
  local mode=$1 dir=$2 shards replicas zk n i bin
  case "$mode" in
    single) shards=1; replicas=1; zk=0 ;;
    shards) shards=2; replicas=1; zk=0 ;;
    replicated) shards=2; replicas=2; zk=1 ;;
    *) fail "mode must be single, shards or replicated" ;;
  esac
  n=$((shards * replicas))
  bin="$(command -v clickhouse-server || echo /usr/sbin/clickhouse-server)"
  [ -x "$bin" ] || fail "clickhouse-server is not installed (apt-get install clickhouse-server)"
  if [ -e "$dir" ]; then
    [ -f "$dir/.burnrate-clickhouse" ] || fail "$dir exists and was not made by this script"
    ls "$dir"/*.pid >/dev/null 2>&1 && fail "$dir has running servers: stop it first"
  fi
  for ((i = 0; i < n; i++)); do
    for p in $((HTTP + i)) $((TCP + i)) $((ISRV + i)); do busy "$p" && fail "port $p is in use (set CH_HTTP_PORT/CH_TCP_PORT/CH_INTERSERVER_PORT)"; done
  done
  mkdir -p "$dir"; touch "$dir/.burnrate-clickhouse"; dir="$(cd "$dir" && pwd)"

  if [ "$zk" = 1 ]; then
    [ -f /usr/share/java/zookeeper.jar ] || fail "ZooKeeper is not installed (apt-get install zookeeper)"
    busy "$ZK" && fail "ZooKeeper port $ZK is in use (set CH_ZK_PORT)"
    mkdir -p "$dir/zk/data"
    printf '%s\n' "tickTime=2000" "initLimit=10" "syncLimit=5" "dataDir=$dir/zk/data" "clientPort=$ZK" \
      "clientPortAddress=127.0.0.1" "admin.enableServer=false" "4lw.commands.whitelist=ruok" "maxClientCnxns=0" > "$dir/zk/zoo.cfg"
    setsid java -Xmx256m -Dzookeeper.admin.enableServer=false -cp /usr/share/java/zookeeper.jar \
      org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/zk/zoo.cfg" > "$dir/zk/out.log" 2>&1 < /dev/null &
    echo $! > "$dir/zk.pid"
    for _ in $(seq 1 120); do
      [ "$( (exec 3<>"/dev/tcp/127.0.0.1/$ZK" && printf ruok >&3 && timeout 2 cat <&3) 2>/dev/null || true)" = imok ] && break
      sleep 0.5
    done
    say "ZooKeeper on 127.0.0.1:$ZK"
  fi

  for ((i = 0; i < n; i++)); do
    local d="$dir/ch$i"
    mkdir -p "$d/data/tmp" "$d/data/user_files" "$d/data/format_schemas" "$d/log"
    server_config "$i" "$(printf '%02d' $((i / replicas + 1)))" "r$((i % replicas + 1))" "$shards" "$replicas" "$zk" "$d"
    ( cd "$d" && exec setsid "$bin" --config-file="$d/config.xml" > "$d/log/stdout.log" 2>&1 < /dev/null ) &
    echo $! > "$dir/ch$i.pid"
  done
  local urls=""
  for ((i = 0; i < n; i++)); do
    for _ in $(seq 1 240); do
      [ "$(curl -s --max-time 2 "http://127.0.0.1:$((HTTP + i))/ping" 2>/dev/null)" = "Ok." ] && break
      kill -0 "$(cat "$dir/ch$i.pid")" 2>/dev/null || fail "server ch$i exited; see $dir/ch$i/log"
      sleep 0.25
    done
    urls="$urls${urls:+, }http://127.0.0.1:$((HTTP + i))"
  done
  say "$n server(s) answer on 127.0.0.1:$HTTP.. ($mode); data under $dir"
  # The storage: section of burnrate.yaml for these servers.
  echo "storage:"
  echo "  store: clickhouse"
  echo "  clickhouse:"
  echo "    urls: [$urls]"
  echo "    database: burnrate"
  [ "$shards" -gt 1 ] && echo "    cluster: burnrate"
  [ "$replicas" -gt 1 ] && echo "    replicated: true"
  return 0
}

case "$cmd" in
  start) [ $# -eq 2 ] || fail "usage: $0 start single|shards|replicated DIR"; start_all "$1" "$2" ;;
  stop) [ $# -eq 1 ] || fail "usage: $0 stop DIR"; stop_all "$1" ;;
  *) echo "usage: $0 start single|shards|replicated DIR | stop DIR" >&2; exit 2 ;;
esac
