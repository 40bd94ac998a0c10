#!/usr/bin/env bash
# Apache Kafka, single node, KRaft mode (broker + controller in one JVM),
# listening on 127.0.0.1 only: a peer for sluice-bench.
#
# usage: bench/peers/kafka/kafka.sh setup|start|stop|status|reset|info
#
#   setup   fetch kafka_2.13 and its runtime jars from Maven Central with mvn
#           into $SLUICE_BENCH_CACHE/kafka-<version>/libs (no-op if present)
#   start   setup if needed, write the config, format the KRaft storage if it
#           is not formatted, start the broker in the background and wait
#           (bounded) until it answers a metadata request; no-op if running
#   stop    SIGTERM, wait (bounded), then SIGKILL; no-op if stopped
#   status  exit 0 if running and answering, 3 if stopped, 1 if running but
#           not answering
#   reset   stop, then delete the data dir (topics, offsets, cluster id) and
#           the run dir (config, pid, log); the jars stay
#   info    print the settings as KEY=VALUE lines
#
# Environment (all optional):
#   SLUICE_BENCH_CACHE     root of all state     (~/.cache/sluice-bench)
#   KAFKA_VERSION          kafka_2.13 version    (3.9.1)
#   KAFKA_PORT             broker listener       (19092)
#   KAFKA_CONTROLLER_PORT  KRaft controller      (19093)
#   KAFKA_HEAP_OPTS        JVM heap              (-Xms1g -Xmx1g)
#   KAFKA_START_TIMEOUT    seconds to wait for the broker to answer (60)
#   KAFKA_STOP_TIMEOUT     seconds between SIGTERM and SIGKILL      (30)
#   JAVA_HOME              java to run (else `java` on PATH; 11 or newer)
set -euo pipefail

PEER=kafka
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/../common.sh
. "$HERE/../common.sh"

KAFKA_VERSION=${KAFKA_VERSION:-3.9.1}
KAFKA_HOST=127.0.0.1
KAFKA_PORT=${KAFKA_PORT:-19092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-19093}
KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xms1g -Xmx1g}
KAFKA_JVM_PERFORMANCE_OPTS=${KAFKA_JVM_PERFORMANCE_OPTS:--server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true}
KAFKA_START_TIMEOUT=${KAFKA_START_TIMEOUT:-60}
KAFKA_STOP_TIMEOUT=${KAFKA_STOP_TIMEOUT:-30}

DIST_DIR=$SLUICE_BENCH_CACHE/kafka-$KAFKA_VERSION
LIBS_DIR=$DIST_DIR/libs
LIBS_DONE=$DIST_DIR/.libs-complete
DATA_DIR=$SLUICE_BENCH_CACHE/kafka-data
RUN_DIR=$SLUICE_BENCH_CACHE/kafka-run
CONFIG=$RUN_DIR/server.properties
LOG4J=$RUN_DIR/log4j.properties
PID_FILE=$RUN_DIR/kafka.pid
LOG_FILE=$RUN_DIR/kafka.log
BOOTSTRAP=$KAFKA_HOST:$KAFKA_PORT

if [[ -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java ]]; then
  JAVA=$JAVA_HOME/bin/java
else
  JAVA=java
fi

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
}

# --- setup -------------------------------------------------------------------

libs_present() {
  [[ -f $LIBS_DONE ]] && compgen -G "$LIBS_DIR/kafka_2.13-$KAFKA_VERSION.jar" >/dev/null
}

cmd_setup() {
  if libs_present; then
    log "kafka_2.13 $KAFKA_VERSION already in $LIBS_DIR ($(find "$LIBS_DIR" -name '*.jar' | wc -l) jars)"
    return 0
  fi
  need_cmd mvn
  mkdir -p "$DIST_DIR"
  local tmp
  tmp=$(mktemp -d "$DIST_DIR/libs.tmp.XXXXXX")
  log "fetching org.apache.kafka:kafka_2.13:$KAFKA_VERSION and its runtime dependencies from Maven Central"
  # -B: no colours/progress; the pom has packaging "pom", so nothing is built.
  local mvn_log=$DIST_DIR/mvn.log
  if ! mvn -B -Dstyle.color=never -f "$HERE/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
      dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory="$tmp" >"$mvn_log" 2>&1; then
    grep -E '^\[(ERROR|WARNING)\]' "$mvn_log" | tail -n 20 >&2 || true
    rm -rf "${tmp:?}"
    die "mvn could not fetch kafka_2.13 $KAFKA_VERSION (full output: $mvn_log)"
  fi
  [[ -f $tmp/kafka_2.13-$KAFKA_VERSION.jar ]] || { rm -rf "${tmp:?}"; die "mvn ran but kafka_2.13-$KAFKA_VERSION.jar is missing"; }
  rm -rf "${LIBS_DIR:?}"
  mv "$tmp" "$LIBS_DIR"
  printf '%s\n' "$KAFKA_VERSION" >"$LIBS_DONE"
  log "installed $(find "$LIBS_DIR" -name '*.jar' | wc -l) jars ($(du -sh "$LIBS_DIR" | cut -f1)) in $LIBS_DIR"
}

# --- process state -----------------------------------------------------------

# Prints the broker's pid if it is running.
running_pid() {
  local pid
  pid=$(read_pid "$PID_FILE") || return 1
  pid_alive "$pid" && pid_cmdline_has "$pid" kafka.Kafka || return 1
  printf '%s\n' "$pid"
}

answering() {
  timeout 15 kcat -b "$BOOTSTRAP" -L -m 5 >/dev/null 2>&1
}

# --- start -------------------------------------------------------------------

write_config() {
  mkdir -p "$RUN_DIR" "$DATA_DIR"
  cat >"$CONFIG" <<EOF
# Written by bench/peers/kafka/kafka.sh; rewritten on every start.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT,CONTROLLER://$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA_DIR
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
num.network.threads=3
num.io.threads=8
log.retention.hours=24
log.segment.bytes=1073741824
EOF
  cat >"$LOG4J" <<'EOF'
# Written by bench/peers/kafka/kafka.sh. Everything goes to stdout, which the
# script sends to kafka.log.
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.org.apache.kafka=INFO
EOF
}

format_storage() {
  if [[ -f $DATA_DIR/meta.properties ]]; then
    return 0
  fi
  local cluster_id
  cluster_id=$("$JAVA" -cp "$LIBS_DIR/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)
  [[ -n $cluster_id ]] || die "could not generate a cluster id (kafka.tools.StorageTool random-uuid)"
  log "formatting KRaft storage in $DATA_DIR (cluster id $cluster_id)"
  "$JAVA" -Xmx256m -Dlog4j.configuration="file:$LOG4J" -cp "$LIBS_DIR/*" \
    kafka.tools.StorageTool format -t "$cluster_id" -c "$CONFIG" >>"$LOG_FILE" 2>&1 ||
    die "formatting the storage failed; see $LOG_FILE"
}

cmd_start() {
  local pid
  if pid=$(running_pid); then
    if answering; then
      log "already running (pid $pid) on $BOOTSTRAP"
      return 0
    fi
    log "running (pid $pid) but not answering yet; waiting"
    WAIT_PID=$pid wait_for "$KAFKA_START_TIMEOUT" "kafka on $BOOTSTRAP" answering ||
      die "pid $pid does not answer on $BOOTSTRAP; see $LOG_FILE (try: $0 stop)"
    return 0
  fi
  need_cmd "$JAVA" kcat ss setsid
  local port
  for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
    if [[ -n $(port_listeners "$port") ]]; then
      die "port $port is already in use: $(port_listeners "$port" | awk '{print $4}' | tr '\n' ' ')"
    fi
  done
  cmd_setup
  write_config
  format_storage

  log "starting kafka $KAFKA_VERSION (KRaft, node 1) on $BOOTSTRAP, controller on $KAFKA_HOST:$KAFKA_CONTROLLER_PORT"
  local t0=$SECONDS
  printf '\n==== start %s ====\n' "$(date -Is)" >>"$LOG_FILE"
  # setsid: own session, so the broker outlives the shell that started it.
  # shellcheck disable=SC2086 # the *_OPTS are lists of JVM flags
  setsid "$JAVA" $KAFKA_HEAP_OPTS $KAFKA_JVM_PERFORMANCE_OPTS \
    -Dlog4j.configuration="file:$LOG4J" -Dkafka.logs.dir="$RUN_DIR" \
    -cp "$LIBS_DIR/*" kafka.Kafka "$CONFIG" \
    </dev/null >>"$LOG_FILE" 2>&1 &
  pid=$!
  printf '%s\n' "$pid" >"$PID_FILE"
  if ! WAIT_PID=$pid wait_for "$KAFKA_START_TIMEOUT" "kafka on $BOOTSTRAP" answering; then
    log "last lines of $LOG_FILE:"
    tail -n 20 "$LOG_FILE" >&2 || true
    terminate "$pid" 10
    rm -f "$PID_FILE"
    die "kafka did not come up"
  fi
  log "up after $((SECONDS - t0))s (pid $pid, RSS $(($(rss_kib "$pid") / 1024)) MiB); log: $LOG_FILE"
}

# --- stop / status / reset ---------------------------------------------------

cmd_stop() {
  local pid
  if ! pid=$(running_pid); then
    rm -f "$PID_FILE"
    log "not running"
    return 0
  fi
  log "stopping pid $pid"
  terminate "$pid" "$KAFKA_STOP_TIMEOUT"
  rm -f "$PID_FILE"
  log "stopped"
}

cmd_status() {
  local pid
  if ! pid=$(running_pid); then
    log "stopped"
    return 3
  fi
  if answering; then
    log "running (pid $pid, RSS $(($(rss_kib "$pid") / 1024)) MiB), answering on $BOOTSTRAP"
    return 0
  fi
  log "running (pid $pid) but not answering on $BOOTSTRAP"
  return 1
}

cmd_reset() {
  cmd_stop
  log "deleting $DATA_DIR and $RUN_DIR"
  rm -rf "${DATA_DIR:?}" "${RUN_DIR:?}"
}

cmd_info() {
  cat <<EOF
KAFKA_VERSION=$KAFKA_VERSION
KAFKA_BOOTSTRAP=$BOOTSTRAP
KAFKA_CONTROLLER=$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
KAFKA_LIBS=$LIBS_DIR
KAFKA_DATA=$DATA_DIR
KAFKA_CONFIG=$CONFIG
KAFKA_LOG=$LOG_FILE
KAFKA_PID_FILE=$PID_FILE
EOF
}

case ${1:-} in
  setup) cmd_setup ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  reset) cmd_reset ;;
  info) cmd_info ;;
  -h | --help | help) usage ;;
  *) usage; exit 2 ;;
esac
