#!/usr/bin/env bash
# Local servers for Riffle's tests, CI, benchmarks and `riffle start`:
#   Apache Kafka 4 (KRaft, one combined broker+controller, jars from Maven Central),
#   Redis and PostgreSQL (Debian packages, private instances), FerretDB 1.24 (MongoDB wire
#   protocol, SQLite backend, built from the Go module proxy).
#
# Usage: scripts/services.sh up|down|status [kafka|redis|postgres|ferretdb ...]
#   up      install/build what is missing, start what is not running, wait until every
#           server answers, then write `export` lines to .riffle/services.env
#   down    stop what `up` started (pid files under .riffle/services/)
#   status  print each service's state (exit 0 when all named services run, 3 otherwise)
#
# Everything lives under <repo>/.riffle/ (git-ignored): cache/ (jars, binaries),
# services/<name>/ (data, logs, pid files) and services.env. Every server listens on
# 127.0.0.1 only. Ports (env):
#   RIFFLE_SERVICES_KAFKA_PORT=9092  RIFFLE_SERVICES_KAFKA_CONTROLLER_PORT=9093
#   RIFFLE_SERVICES_REDIS_PORT=6379  RIFFLE_SERVICES_POSTGRES_PORT=5432
#   RIFFLE_SERVICES_MONGODB_PORT=27017 (alias RIFFLE_SERVICES_FERRETDB_PORT)
# Other knobs: RIFFLE_SERVICES_KAFKA_HEAP=512m, RIFFLE_SERVICES_TIMEOUT=120 (seconds to wait
# for the servers to answer), RIFFLE_SERVICES_FERRETDB_LOG_LEVEL=warn.
# Logs: .riffle/services/kafka/logs/server.log, redis/redis.log, postgres/postgres.log,
# ferretdb/ferretdb.log.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.riffle"
SVC="$STATE/services"
CACHE="$STATE/cache"
ENV_FILE="$STATE/services.env"
HOST=127.0.0.1

KAFKA_PORT="${RIFFLE_SERVICES_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${RIFFLE_SERVICES_KAFKA_CONTROLLER_PORT:-9093}"
REDIS_PORT="${RIFFLE_SERVICES_REDIS_PORT:-6379}"
PG_PORT="${RIFFLE_SERVICES_POSTGRES_PORT:-5432}"
MONGO_PORT="${RIFFLE_SERVICES_MONGODB_PORT:-${RIFFLE_SERVICES_FERRETDB_PORT:-27017}}"
KAFKA_HEAP="${RIFFLE_SERVICES_KAFKA_HEAP:-512m}"
TIMEOUT="${RIFFLE_SERVICES_TIMEOUT:-120}"

ALL_SERVICES=(kafka redis postgres ferretdb)
declare -A T0=() START_JOB=() # start time and launching job of each server `up` starts
KAFKA_LIBS="$CACHE/kafka/libs"
FERRETDB_BIN="$CACHE/bin/ferretdb-riffle"

say() { printf 'services: %s\n' "$*"; }
warn() { printf 'services: %s\n' "$*" >&2; }
die() { warn "$*"; exit 1; }
now() { printf '%s' "${EPOCHREALTIME/,/.}"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }
is_root() { [ "$(id -u)" -eq 0 ]; }

# tail of a log on failure
show_log() {
  local f
  for f in "$@"; do
    [ -s "$f" ] || continue
    warn "---- last lines of $f ----"
    tail -n 25 "$f" >&2 || true
    warn "----"
  done
}

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# pid_matches PID WORD: the process's command line contains WORD (guards against pid reuse)
pid_matches() {
  [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF -- "$2"
}

# ---------------------------------------------------------------------------------------
# service names, pids, liveness

canon() {
  case "$1" in
    kafka) echo kafka ;;
    redis) echo redis ;;
    postgres | postgresql | pg) echo postgres ;;
    ferretdb | mongodb | mongo) echo ferretdb ;;
    *) die "unknown service '$1' (known: ${ALL_SERVICES[*]})" ;;
  esac
}

svc_port() {
  case "$1" in
    kafka) echo "$KAFKA_PORT" ;; redis) echo "$REDIS_PORT" ;;
    postgres) echo "$PG_PORT" ;; ferretdb) echo "$MONGO_PORT" ;;
  esac
}

# where PostgreSQL keeps its cluster (see pg_prepare_dir)
pg_data_dir() {
  if [ -s "$SVC/postgres/datadir" ]; then cat "$SVC/postgres/datadir"; else echo "$SVC/postgres/data"; fi
}

# the pid of a running service that we started, or nothing
svc_pid() {
  local pid=""
  case "$1" in
    kafka)
      pid="$(cat "$SVC/kafka/pid" 2>/dev/null || true)"
      pid_alive "$pid" && pid_matches "$pid" "$SVC/kafka/server.properties" && echo "$pid" ;;
    redis)
      pid="$(cat "$SVC/redis/pid" 2>/dev/null || true)"
      pid_alive "$pid" && pid_matches "$pid" "redis-server" && echo "$pid" ;;
    postgres)
      pid="$(head -n1 "$(pg_data_dir)/postmaster.pid" 2>/dev/null || true)"
      pid_alive "$pid" && pid_matches "$pid" "postgres" && echo "$pid" ;;
    ferretdb)
      pid="$(cat "$SVC/ferretdb/pid" 2>/dev/null || true)"
      pid_alive "$pid" && pid_matches "$pid" "ferretdb-riffle" && echo "$pid" ;;
  esac
  return 0
}

svc_url() {
  case "$1" in
    kafka) echo "$HOST:$KAFKA_PORT" ;;
    redis) echo "redis://$HOST:$REDIS_PORT" ;;
    postgres) echo "postgres://riffle:riffle@$HOST:$PG_PORT/riffle" ;;
    ferretdb) echo "mongodb://$HOST:$MONGO_PORT/" ;;
  esac
}

svc_env_name() {
  case "$1" in
    kafka) echo RIFFLE_KAFKA_BROKERS ;; redis) echo RIFFLE_REDIS_URL ;;
    postgres) echo RIFFLE_POSTGRES_URL ;; ferretdb) echo RIFFLE_MONGODB_URL ;;
  esac
}

# .riffle/services.env: one export line per running service
write_env() {
  local s tmp="$ENV_FILE.tmp.$$" n=0
  {
    echo "# written by scripts/services.sh; source it: . .riffle/services.env"
    for s in "${ALL_SERVICES[@]}"; do
      if [ -n "$(svc_pid "$s")" ]; then
        echo "export $(svc_env_name "$s")=$(svc_url "$s")"
        n=$((n + 1))
      fi
    done
  } >"$tmp"
  if [ "$n" -gt 0 ]; then mv -f "$tmp" "$ENV_FILE"; else rm -f "$tmp" "$ENV_FILE"; fi
}

# ---------------------------------------------------------------------------------------
# installing and building

APT_UPDATED=0
apt_install() {
  [ "$#" -gt 0 ] || return 0
  local sudo=""
  if ! is_root; then
    if ! { command -v sudo >/dev/null && sudo -n true 2>/dev/null; }; then
      die "need root (or sudo) to install: $*"
    fi
    sudo="sudo -n"
  fi
  say "installing Debian packages: $* …"
  local log="$SVC/apt.log" rc=0 t0
  t0="$(now)"
  # Keep package scripts from starting the system-wide redis/postgresql services, and keep
  # the postgresql package from creating its own "main" cluster: we run private instances.
  local policy_added=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod 755 /usr/sbin/policy-rc.d
    policy_added=1
  fi
  if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
    $sudo mkdir -p /etc/postgresql-common
    echo 'create_main_cluster = false' | $sudo tee /etc/postgresql-common/createcluster.conf >/dev/null
  fi
  {
    if [ "$APT_UPDATED" = 0 ]; then
      $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q && APT_UPDATED=1
    fi
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@"
  } >>"$log" 2>&1 || rc=$?
  [ "$policy_added" = 1 ] && $sudo rm -f /usr/sbin/policy-rc.d
  if [ "$rc" != 0 ]; then show_log "$log"; return "$rc"; fi
  say "installed $* ($(since "$t0"))"
}

pg_bin_dir() {
  local d
  d="$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n1)"
  [ -n "$d" ] && [ -x "$d/initdb" ] && echo "$d"
  return 0
}

# Debian packages that the requested services still need
missing_packages() {
  local s pkgs=()
  for s in "$@"; do
    case "$s" in
      redis) command -v redis-server >/dev/null && command -v redis-cli >/dev/null || pkgs+=(redis-server redis-tools) ;;
      postgres) [ -n "$(pg_bin_dir)" ] || pkgs+=(postgresql) ;;
      kafka) command -v kcat >/dev/null || pkgs+=(kcat) ;; # readiness check (a Java one otherwise)
    esac
  done
  echo "${pkgs[@]:-}"
}

java_bin() {
  if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then echo "$JAVA_HOME/bin/java"; else command -v java || true; fi
}

# Kafka jars: scripts/kafka/pom.xml resolved by Maven into .riffle/cache/kafka/libs
kafka_prepare() {
  local pom="$ROOT/scripts/kafka/pom.xml" stamp want
  want="$(sha256sum "$pom" | cut -c1-64)"
  stamp="$(cat "$CACHE/kafka/pom.sha256" 2>/dev/null || true)"
  if [ "$stamp" = "$want" ] && ls "$KAFKA_LIBS"/kafka_2.13-*.jar >/dev/null 2>&1; then return 0; fi
  command -v mvn >/dev/null || die "kafka: Maven (mvn) is needed to fetch the Kafka jars"
  local t0 tmp log="$CACHE/kafka/maven.log"
  t0="$(now)"
  mkdir -p "$CACHE/kafka"
  say "kafka: resolving the broker's jars with Maven …"
  tmp="$CACHE/kafka/libs.tmp.$$"
  rm -rf "$tmp"
  if ! mvn -B -q -Dstyle.color=never -f "$pom" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$tmp" >"$log" 2>&1; then
    show_log "$log"
    rm -rf "$tmp"
    die "kafka: Maven could not resolve scripts/kafka/pom.xml"
  fi
  rm -rf "$KAFKA_LIBS"
  mv "$tmp" "$KAFKA_LIBS"
  echo "$want" >"$CACHE/kafka/pom.sha256"
  say "kafka: $(find "$KAFKA_LIBS" -name '*.jar' | wc -l) jars in .riffle/cache/kafka/libs ($(since "$t0"))"
}

# FerretDB: scripts/ferretdb (embeddable FerretDB package) built into .riffle/cache/bin
ferretdb_prepare() {
  local src="$ROOT/scripts/ferretdb" stamp want
  want="$(cat "$src/main.go" "$src/go.mod" "$src/go.sum" | sha256sum | cut -c1-64)"
  stamp="$(cat "$CACHE/bin/ferretdb-riffle.sha256" 2>/dev/null || true)"
  if [ "$stamp" = "$want" ] && [ -x "$FERRETDB_BIN" ]; then return 0; fi
  command -v go >/dev/null || die "ferretdb: Go is needed to build FerretDB"
  local t0 log="$CACHE/bin/ferretdb-build.log"
  t0="$(now)"
  mkdir -p "$CACHE/bin"
  say "ferretdb: building FerretDB with Go (about a minute on a cold Go cache) …"
  if ! (cd "$src" && GOFLAGS=-mod=readonly CGO_ENABLED=0 go build -buildvcs=false -trimpath \
    -ldflags '-s -w' -o "$FERRETDB_BIN.tmp" .) >"$log" 2>&1; then
    show_log "$log"
    die "ferretdb: go build failed"
  fi
  mv -f "$FERRETDB_BIN.tmp" "$FERRETDB_BIN"
  echo "$want" >"$CACHE/bin/ferretdb-riffle.sha256"
  say "ferretdb: built .riffle/cache/bin/ferretdb-riffle ($(since "$t0"))"
}

# ---------------------------------------------------------------------------------------
# starting

check_port_free() { # NAME PORT
  if port_open "$2"; then
    die "$1: $HOST:$2 is already taken by a process that this script did not start; stop it or set another port (see the top of scripts/services.sh)"
  fi
}

kafka_start() {
  local dir="$SVC/kafka" java
  java="$(java_bin)"
  [ -n "$java" ] || die "kafka: Java 17+ is needed"
  check_port_free kafka "$KAFKA_PORT"
  check_port_free kafka-controller "$KAFKA_CONTROLLER_PORT"
  mkdir -p "$dir/data" "$dir/logs"
  cat >"$dir/server.properties" <<EOF
# written by scripts/services.sh on every start
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
delete.topic.enable=true
group.initial.rebalance.delay.ms=0
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
num.network.threads=2
num.io.threads=4
log.retention.hours=48
log.segment.bytes=268435456
EOF
  local jvm=(-Xms256m "-Xmx$KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError
    -Djava.awt.headless=true -Dkafka.logs.dir="$dir/logs"
    -Dlog4j2.configurationFile="$ROOT/scripts/kafka/log4j2.xml"
    -cp "$KAFKA_LIBS/*")
  if [ ! -s "$dir/data/meta.properties" ]; then
    # A KRaft cluster id: 16 random bytes, URL-safe base64. Like Kafka's own Uuid.randomUuid, never
    # one that starts with "-": the storage tool would read it as an option (1 start in 64 failed).
    local id="-"
    while [ "${id:0:1}" = "-" ]; do
      id="$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    done
    if ! "$java" "${jvm[@]}" kafka.tools.StorageTool format --cluster-id="$id" -c "$dir/server.properties" \
      >"$dir/format.log" 2>&1; then
      show_log "$dir/format.log"
      die "kafka: formatting the KRaft storage failed"
    fi
  fi
  setsid nohup "$java" "${jvm[@]}" kafka.Kafka "$dir/server.properties" \
    >"$dir/logs/stdout.log" 2>&1 </dev/null 9>&- &
  echo $! >"$dir/pid"
}

kafka_ready() {
  port_open "$KAFKA_PORT" || return 1
  if command -v kcat >/dev/null; then
    kcat -b "$HOST:$KAFKA_PORT" -L -m 2 2>/dev/null | grep -q '1 brokers'
  else
    "$(java_bin)" -cp "$KAFKA_LIBS/*" "$ROOT/scripts/kafka/KafkaCheck.java" ready "$HOST:$KAFKA_PORT" >/dev/null 2>&1
  fi
}

redis_start() {
  local dir="$SVC/redis"
  check_port_free redis "$REDIS_PORT"
  mkdir -p "$dir"
  setsid nohup redis-server --port "$REDIS_PORT" --bind "$HOST" --protected-mode yes \
    --daemonize no --logfile "$dir/redis.log" --dir "$dir" --save '' --appendonly no \
    >"$dir/stdout.log" 2>&1 </dev/null 9>&- &
  echo $! >"$dir/pid"
}

redis_ready() {
  [ "$(redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]
}

# As root, PostgreSQL runs as the `postgres` OS user (the server refuses to run as root).
PG_USER=""
pg_as() {
  if [ -n "$PG_USER" ]; then runuser -u "$PG_USER" -- "$@"; else "$@"; fi
}

# Choose the data directory: .riffle/services/postgres/data, unless the postgres user cannot
# reach it (a checkout under /root, say); then a directory under /var/tmp, remembered in
# .riffle/services/postgres/datadir.
pg_prepare_dir() {
  local dir="$SVC/postgres"
  mkdir -p "$dir"
  if is_root; then
    id postgres >/dev/null 2>&1 || die "postgres: the 'postgres' OS user is missing (is the postgresql package installed?)"
    PG_USER=postgres
    if [ ! -s "$dir/datadir" ]; then
      chown postgres: "$dir"
      if ! runuser -u postgres -- test -w "$dir"; then
        local alt
        alt="/var/tmp/riffle-services-$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)/postgres"
        mkdir -p "$alt"
        chown postgres: "$alt" "$(dirname "$alt")"
        echo "$alt/data" >"$dir/datadir"
        say "postgres: the postgres user cannot reach $dir; data goes to $alt/data"
      fi
    fi
    local data parent
    data="$(pg_data_dir)"
    parent="$(dirname "$data")"
    mkdir -p "$parent"
    chown postgres: "$parent"
  fi
}

pg_start() {
  local bin dir="$SVC/postgres" data
  bin="$(pg_bin_dir)"
  [ -n "$bin" ] || die "postgres: no /usr/lib/postgresql/*/bin/initdb"
  check_port_free postgres "$PG_PORT"
  pg_prepare_dir
  data="$(pg_data_dir)"
  local log
  log="$(dirname "$data")/postgres.log"
  if [ ! -s "$data/PG_VERSION" ]; then
    if ! pg_as "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --no-locale \
      --no-instructions >"$dir/initdb.log" 2>&1; then
      show_log "$dir/initdb.log"
      die "postgres: initdb failed"
    fi
  elif [ "$(cat "$data/PG_VERSION")" != "$(basename "$(dirname "$bin")")" ]; then
    die "postgres: $data was made by PostgreSQL $(cat "$data/PG_VERSION") but $bin is another major version; remove that directory to start afresh"
  fi
  rm -f "$data/postmaster.pid" # stale: we only get here when our server is not running
  # TCP on 127.0.0.1 only; no Unix socket (paths under a deep checkout can be too long).
  if ! pg_as setsid "$bin/pg_ctl" -D "$data" -l "$log" -w -t "$TIMEOUT" \
    -o "-c port=$PG_PORT -c listen_addresses=$HOST -c unix_socket_directories='' -c max_connections=200 -c fsync=on" \
    start >"$dir/pg_ctl.log" 2>&1 </dev/null 9>&-; then
    show_log "$dir/pg_ctl.log" "$log"
    die "postgres: pg_ctl start failed"
  fi
}

pg_psql() { # psql as the superuser over TCP
  "$(pg_bin_dir)/psql" -X -q -v ON_ERROR_STOP=1 -h "$HOST" -p "$PG_PORT" -U postgres -d postgres "$@"
}

pg_ready() {
  local bin
  bin="$(pg_bin_dir)"
  "$bin/pg_isready" -q -h "$HOST" -p "$PG_PORT" || return 1
  # role and database `riffle` (password riffle; loopback uses trust auth anyway)
  if [ "$(pg_psql -tAc "select 1 from pg_roles where rolname = 'riffle'" 2>/dev/null)" != 1 ]; then
    pg_psql -c "create role riffle login superuser password 'riffle'" >/dev/null 2>&1 || return 1
  fi
  if [ "$(pg_psql -tAc "select 1 from pg_database where datname = 'riffle'" 2>/dev/null)" != 1 ]; then
    pg_psql -c "create database riffle owner riffle" >/dev/null 2>&1 || return 1
  fi
  [ "$("$bin/psql" -X -tA "$(svc_url postgres)" -c 'select 1' 2>/dev/null)" = 1 ]
}

ferretdb_start() {
  local dir="$SVC/ferretdb"
  check_port_free ferretdb "$MONGO_PORT"
  mkdir -p "$dir/data"
  [ -f "$dir/ferretdb.log" ] && mv -f "$dir/ferretdb.log" "$dir/ferretdb.log.1"
  # warn: FerretDB logs every connection at info
  setsid nohup "$FERRETDB_BIN" -listen-addr "$HOST:$MONGO_PORT" -sqlite-dir "$dir/data" \
    -log-level "${RIFFLE_SERVICES_FERRETDB_LOG_LEVEL:-warn}" \
    >"$dir/ferretdb.log" 2>&1 </dev/null 9>&- &
  echo $! >"$dir/pid"
}

ferretdb_ready() {
  port_open "$MONGO_PORT" && "$FERRETDB_BIN" ping "$(svc_url ferretdb)" >/dev/null 2>&1
}

svc_logs() {
  case "$1" in
    kafka) echo "$SVC/kafka/logs/stdout.log $SVC/kafka/logs/server.log" ;;
    redis) echo "$SVC/redis/stdout.log $SVC/redis/redis.log" ;;
    postgres) echo "$(dirname "$(pg_data_dir)")/postgres.log" ;;
    ferretdb) echo "$SVC/ferretdb/ferretdb.log" ;;
  esac
}

svc_ready() {
  case "$1" in
    kafka) kafka_ready ;; redis) redis_ready ;; postgres) pg_ready ;; ferretdb) ferretdb_ready ;;
  esac
}

# wait_ready NAME...: poll every named server (start times in T0, launch jobs in START_JOB)
# until each answers; report each as it does. On failure show the server's log and fail.
wait_ready() {
  local pending=("$@") left s job rc deadline
  deadline=$(($(date +%s) + TIMEOUT))
  while [ "${#pending[@]}" -gt 0 ]; do
    left=()
    for s in "${pending[@]}"; do
      job="${START_JOB[$s]:-}"
      if [ -n "$job" ]; then
        if kill -0 "$job" 2>/dev/null; then # still launching (initdb, storage format, pg_ctl)
          left+=("$s")
          continue
        fi
        rc=0
        wait "$job" || rc=$?
        START_JOB[$s]=""
        [ "$rc" = 0 ] || die "$s failed to start (see above)"
      fi
      if svc_ready "$s"; then
        say "$s ready on $HOST:$(svc_port "$s") ($(since "${T0[$s]}"))"
      elif [ -z "$(svc_pid "$s")" ]; then
        # shellcheck disable=SC2046
        show_log $(svc_logs "$s")
        die "$s exited during start-up"
      elif [ "$(date +%s)" -ge "$deadline" ]; then
        # shellcheck disable=SC2046
        show_log $(svc_logs "$s")
        die "$s did not answer within ${TIMEOUT}s"
      else
        left+=("$s")
      fi
    done
    pending=("${left[@]+"${left[@]}"}")
    [ "${#pending[@]}" -eq 0 ] || sleep 0.2
  done
}

cmd_up() {
  local services=("$@") s pid
  local to_start=() to_wait=()
  for s in "${services[@]}"; do
    pid="$(svc_pid "$s")"
    if [ -z "$pid" ]; then
      to_start+=("$s")
    elif svc_ready "$s"; then
      say "$s already running on $HOST:$(svc_port "$s") (pid $pid)"
    else
      say "$s already started (pid $pid), waiting for it to answer…"
      T0[$s]="$(now)"
      to_wait+=("$s")
    fi
  done
  if [ "${#to_start[@]}" -gt 0 ]; then
    # 1. install and build what is missing (Maven and Go run while apt works)
    local jobs=() j
    for s in "${to_start[@]}"; do
      case "$s" in
        kafka) kafka_prepare & jobs+=($!) ;;
        ferretdb) ferretdb_prepare & jobs+=($!) ;;
      esac
    done
    local pkgs rc=0
    pkgs="$(missing_packages "${to_start[@]}")"
    if [ -n "$pkgs" ]; then
      # shellcheck disable=SC2086
      apt_install $pkgs || rc=$?
    fi
    for j in "${jobs[@]}"; do wait "$j" || rc=1; done
    [ "$rc" = 0 ] || die "up failed while installing or building (see above)"

    # 2. launch everything at once (each launch in its own job: Kafka's storage format and
    #    PostgreSQL's initdb + pg_ctl take a while), then 3. wait until all answer
    local started=()
    for s in kafka redis postgres ferretdb; do
      [[ " ${to_start[*]} " == *" $s "* ]] || continue
      say "$s starting…"
      T0[$s]="$(now)"
      case "$s" in
        kafka) kafka_start & ;; redis) redis_start & ;; postgres) pg_start & ;; ferretdb) ferretdb_start & ;;
      esac
      START_JOB[$s]=$!
      started+=("$s")
    done
    to_wait+=("${started[@]}")
  fi
  [ "${#to_wait[@]}" -eq 0 ] || wait_ready "${to_wait[@]}"
  write_env
  say "wrote ${ENV_FILE#"$ROOT"/}"
}

# stop_pid NAME PID SECONDS: TERM, wait, then KILL
stop_pid() {
  local s="$1" pid="$2" secs="$3" i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < secs * 10; i++)); do
    pid_alive "$pid" || return 0
    sleep 0.1
  done
  warn "$s did not stop within ${secs}s; killing pid $pid"
  kill -KILL "$pid" 2>/dev/null || true
}

# stop_svc NAME PID: stop one server that `up` started
stop_svc() {
  local s="$1" pid="$2" t0
  t0="$(now)"
  case "$s" in
    kafka) stop_pid kafka "$pid" 60 ;; # controlled shutdown takes a few seconds
    redis)
      redis-cli -h "$HOST" -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
      stop_pid redis "$pid" 10 ;;
    postgres)
      if is_root; then PG_USER=postgres; fi
      pg_as "$(pg_bin_dir)/pg_ctl" -D "$(pg_data_dir)" -m fast -w -t 60 stop >/dev/null 2>&1 ||
        stop_pid postgres "$pid" 30 ;;
    ferretdb) stop_pid ferretdb "$pid" 15 ;;
  esac
  case "$s" in
    kafka | redis | ferretdb) rm -f "$SVC/$s/pid" ;;
  esac
  say "$s stopped ($(since "$t0"))"
}

cmd_down() {
  local s pid jobs=() j
  for s in "$@"; do
    pid="$(svc_pid "$s")"
    if [ -z "$pid" ]; then
      say "$s not running"
      case "$s" in
        kafka | redis | ferretdb) rm -f "$SVC/$s/pid" ;;
      esac
    else
      stop_svc "$s" "$pid" &
      jobs+=($!)
    fi
  done
  for j in "${jobs[@]+"${jobs[@]}"}"; do wait "$j" || true; done
  write_env
}

cmd_status() {
  local s pid all=0
  for s in "$@"; do
    pid="$(svc_pid "$s")"
    if [ -z "$pid" ]; then
      printf '%-9s stopped\n' "$s"
      all=3
    elif svc_ready "$s"; then
      printf '%-9s running  %-45s pid %s\n' "$s" "$(svc_url "$s")" "$pid"
    else
      printf '%-9s starting %-45s pid %s (not answering yet)\n' "$s" "$(svc_url "$s")" "$pid"
      all=3
    fi
  done
  [ -f "$ENV_FILE" ] && printf 'env file: %s\n' "${ENV_FILE#"$ROOT"/}"
  return "$all"
}

main() {
  local cmd="${1:-}"
  [ "$#" -gt 0 ] && shift
  local services=() s
  for s in "$@"; do services+=("$(canon "$s")"); done
  [ "${#services[@]}" -gt 0 ] || services=("${ALL_SERVICES[@]}")
  mkdir -p "$SVC" "$CACHE"
  case "$cmd" in
    up | down)
      # one `up`/`down` at a time (tests may call `up` in parallel)
      exec 9>"$SVC/.lock"
      flock 9
      if [ "$cmd" = up ]; then cmd_up "${services[@]}"; else cmd_down "${services[@]}"; fi ;;
    status) cmd_status "${services[@]}" ;;
    *)
      echo "usage: $0 up|down|status [kafka|redis|postgres|ferretdb ...]" >&2
      exit 2 ;;
  esac
}

main "$@"
