#!/usr/bin/env bash
# RabbitMQ from Debian's rabbitmq-server package, run as a private node whose
# every listener (AMQP, Erlang distribution, epmd, CLI) is on 127.0.0.1:
# a peer for sluice-bench. The distribution's own service is left stopped.
#
# usage: bench/peers/rabbitmq/rabbitmq.sh setup|start|stop|status|reset|info
#
#   setup   apt-get install rabbitmq-server if missing (non-interactive), then
#           make sure the distribution's service is not running
#   start   setup if needed, write the config, start the private node in the
#           background and wait (bounded) until it speaks AMQP; no-op if running
#   stop    rabbitmqctl stop (bounded), then SIGTERM/SIGKILL; also stops the
#           private epmd; no-op if stopped
#   status  exit 0 if running and answering, 3 if stopped, 1 if running but
#           not answering
#   reset   stop, then delete $SLUICE_BENCH_CACHE/rabbitmq (queues, messages,
#           users, logs, cookie)
#   info    print the settings as KEY=VALUE lines
#   ctl ARGS...  rabbitmqctl ARGS against the private node (e.g. ctl list_queues)
#
# Environment (all optional):
#   SLUICE_BENCH_CACHE        root of all state        (~/.cache/sluice-bench)
#   RABBITMQ_NODENAME         node name                (sluice-bench@localhost)
#   RABBITMQ_NODE_PORT        AMQP listener            (15673)
#   RABBITMQ_DIST_PORT        Erlang distribution      (15674)
#   RABBITMQ_CTL_DIST_PORT_MIN/MAX  rabbitmqctl's own  (15680-15689)
#   ERL_EPMD_PORT             private epmd             (14369)
#   RABBITMQ_START_TIMEOUT    seconds to wait for AMQP (90)
#   RABBITMQ_STOP_TIMEOUT     seconds for a clean stop before SIGKILL (60)
# The default user guest/guest may log in from loopback only (RabbitMQ's
# default), which is all the benchmark needs.
set -euo pipefail

PEER=rabbitmq
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/../common.sh
. "$HERE/../common.sh"

RMQ_HOST=127.0.0.1
RMQ_DIR=$SLUICE_BENCH_CACHE/rabbitmq
RMQ_START_TIMEOUT=${RABBITMQ_START_TIMEOUT:-90}
RMQ_STOP_TIMEOUT=${RABBITMQ_STOP_TIMEOUT:-60}
WRAPPER_PID_FILE=$RMQ_DIR/wrapper.pid
CONSOLE_LOG=$RMQ_DIR/console.log

# Everything the node and the CLI tools read comes from here, so that
# /etc/rabbitmq, /var/lib/rabbitmq and the system's epmd are never used.
export RABBITMQ_NODENAME=${RABBITMQ_NODENAME:-sluice-bench@localhost}
export RABBITMQ_NODE_IP_ADDRESS=$RMQ_HOST
export RABBITMQ_NODE_PORT=${RABBITMQ_NODE_PORT:-15673}
export RABBITMQ_DIST_PORT=${RABBITMQ_DIST_PORT:-15674}
export RABBITMQ_CTL_DIST_PORT_MIN=${RABBITMQ_CTL_DIST_PORT_MIN:-15680}
export RABBITMQ_CTL_DIST_PORT_MAX=${RABBITMQ_CTL_DIST_PORT_MAX:-15689}
export ERL_EPMD_ADDRESS=$RMQ_HOST
export ERL_EPMD_PORT=${ERL_EPMD_PORT:-14369}
export RABBITMQ_CONF_ENV_FILE=$RMQ_DIR/etc/rabbitmq-env.conf
export RABBITMQ_CONFIG_FILE=$RMQ_DIR/etc/rabbitmq.conf
export RABBITMQ_ADVANCED_CONFIG_FILE=$RMQ_DIR/etc/advanced.config
export RABBITMQ_ENABLED_PLUGINS_FILE=$RMQ_DIR/etc/enabled_plugins
export RABBITMQ_MNESIA_BASE=$RMQ_DIR/mnesia
export RABBITMQ_LOG_BASE=$RMQ_DIR/log
export RABBITMQ_PID_FILE=$RMQ_DIR/rabbitmq.pid
export RABBITMQ_PLUGINS_EXPAND_DIR=$RMQ_DIR/plugins-expand
# Erlang distribution (node and CLI) bound to loopback.
export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
# The Erlang cookie lives in $HOME/.erlang.cookie: a private one.
export HOME=$RMQ_DIR/home

# Debian's /usr/sbin wrappers su to the rabbitmq user and /var/lib/rabbitmq;
# the scripts they wrap run as the caller with the environment above.
RMQ_SBIN=""
find_sbin() {
  local ctl
  ctl=$(readlink -f /usr/lib/rabbitmq/bin/rabbitmqctl 2>/dev/null) || return 1
  [[ -x $ctl ]] || return 1
  RMQ_SBIN=$(dirname "$ctl")
  [[ -x $RMQ_SBIN/rabbitmq-server ]]
}

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
}

# Prints the installed version of a Debian package (nothing if not installed).
pkg_version() {
  { dpkg-query -W -f='${Status} ${Version}\n' "$1" 2>/dev/null || true; } |
    awk '$1 == "install" && $3 == "installed" {print $4}'
}

ctl() { timeout "${CTL_TIMEOUT:-30}" "$RMQ_SBIN/rabbitmqctl" -n "$RABBITMQ_NODENAME" "$@"; }
diag() { timeout "${CTL_TIMEOUT:-30}" "$RMQ_SBIN/rabbitmq-diagnostics" -n "$RABBITMQ_NODENAME" "$@"; }

# --- setup -------------------------------------------------------------------

as_root() {
  if ((EUID == 0)); then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "need root (or sudo) to run: $*"
  fi
}

# Live (non-zombie) processes of the distribution's rabbitmq user.
system_user_pids() {
  local p
  for p in $(pgrep -u rabbitmq 2>/dev/null || true); do
    if pid_alive "$p"; then printf '%s ' "$p"; fi
  done
}

# The package's postinst starts the distribution's node (rabbit@<hostname>,
# AMQP on every interface, port 5672) unless policy-rc.d forbids it. Make sure
# it is not running. (Not with `/etc/init.d/rabbitmq-server status`: that runs
# rabbitmqctl as the rabbitmq user, which itself starts an epmd on every
# interface.)
stop_system_service() {
  if [[ $(ps -p 1 -o comm= 2>/dev/null) == systemd ]]; then
    if systemctl is-active --quiet rabbitmq-server 2>/dev/null; then
      log "stopping the distribution's rabbitmq-server service (systemd)"
      as_root systemctl stop rabbitmq-server || true
    fi
    if systemctl is-enabled --quiet rabbitmq-server 2>/dev/null; then
      log "disabling the distribution's rabbitmq-server service (systemd)"
      as_root systemctl disable rabbitmq-server >/dev/null 2>&1 || true
    fi
  elif pgrep -u rabbitmq -f beam >/dev/null 2>&1 && [[ -x /etc/init.d/rabbitmq-server ]]; then
    log "stopping the distribution's rabbitmq-server service (init.d)"
    as_root timeout 120 /etc/init.d/rabbitmq-server stop >&2 || true
  fi
  local pids p
  pids=$(system_user_pids)
  if [[ -n $pids ]]; then
    log "processes of the rabbitmq user are still running (pids: $pids); stopping them"
    for p in $pids; do as_root kill -TERM "$p" 2>/dev/null || true; done
    sleep 2
    for p in $(system_user_pids); do as_root kill -KILL "$p" 2>/dev/null || true; done
  fi
}

cmd_setup() {
  local v
  v=$(pkg_version rabbitmq-server)
  if [[ -z $v ]]; then
    need_cmd apt-get dpkg-query
    log "installing Debian's rabbitmq-server package"
    # No policy-rc.d yet: add one for the duration, so that the postinst does
    # not start the distribution's node (systemd ignores it; handled below).
    local policy=/usr/sbin/policy-rc.d added_policy=""
    if [[ ! -e $policy ]]; then
      printf '#!/bin/sh\n# added by sluice bench/peers/rabbitmq/rabbitmq.sh during apt-get install\nexit 101\n' |
        as_root tee "$policy" >/dev/null
      as_root chmod 755 "$policy"
      added_policy=1
    fi
    local rc=0
    {
      if ! apt-cache policy rabbitmq-server 2>/dev/null | grep -q 'Candidate: [0-9]'; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
      fi
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends rabbitmq-server
    } >&2 || rc=$?
    if [[ -n $added_policy ]]; then as_root rm -f "$policy"; fi
    ((rc == 0)) || die "apt-get install rabbitmq-server failed (exit $rc)"
    v=$(pkg_version rabbitmq-server)
    [[ -n $v ]] || die "rabbitmq-server is still not installed"
    log "installed rabbitmq-server $v"
  else
    log "rabbitmq-server $v already installed"
  fi
  stop_system_service
  find_sbin || die "cannot find RabbitMQ's scripts under /usr/lib/rabbitmq"
}

# --- process state -----------------------------------------------------------

# Prints the pid of the node's Erlang VM if it is running.
running_pid() {
  local pid
  pid=$(read_pid "$RABBITMQ_PID_FILE") || return 1
  # The VM's command line has no node name, but has our private HOME.
  pid_alive "$pid" && pid_cmdline_has "$pid" "-home $HOME " &&
    pid_cmdline_has "$pid" " rabbit boot " || return 1
  printf '%s\n' "$pid"
}

wrapper_pid() {
  local pid
  pid=$(read_pid "$WRAPPER_PID_FILE") || return 1
  pid_alive "$pid" && pid_cmdline_has "$pid" rabbitmq-server || return 1
  printf '%s\n' "$pid"
}

# An AMQP 0-9-1 handshake: send the protocol header, expect a method frame
# (type 1, connection.start) back.
amqp_answers() {
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout 5 bash -c '
    exec 3<>"/dev/tcp/$1/$2" || exit 1
    printf "AMQP\x00\x00\x09\x01" >&3
    t=$(head -c 1 <&3 | od -An -tx1 | tr -d " \n")
    exec 3>&-
    [[ $t == 01 ]]' _ "$RMQ_HOST" "$RABBITMQ_NODE_PORT" 2>/dev/null
}

epmd_stop() {
  # Our epmd listens on $ERL_EPMD_PORT only; -kill refuses while nodes are
  # still registered with it.
  if command -v epmd >/dev/null 2>&1 && port_open "$RMQ_HOST" "$ERL_EPMD_PORT"; then
    epmd -port "$ERL_EPMD_PORT" -kill >/dev/null 2>&1 || true
  fi
}

# --- start -------------------------------------------------------------------

write_config() {
  mkdir -p "$RMQ_DIR/etc" "$RABBITMQ_MNESIA_BASE" "$RABBITMQ_LOG_BASE" "$HOME" \
    "$RABBITMQ_PLUGINS_EXPAND_DIR"
  chmod 700 "$HOME"
  cat >"$RABBITMQ_CONF_ENV_FILE" <<'EOF'
# Written by bench/peers/rabbitmq/rabbitmq.sh: intentionally empty, so that
# /etc/rabbitmq/rabbitmq-env.conf is not read. Settings come from the script.
EOF
  cat >"$RABBITMQ_CONFIG_FILE" <<EOF
# Written by bench/peers/rabbitmq/rabbitmq.sh; rewritten on every start.
# The AMQP listener (127.0.0.1:$RABBITMQ_NODE_PORT) comes from
# RABBITMQ_NODE_IP_ADDRESS / RABBITMQ_NODE_PORT.
loopback_users.guest = true
log.file.level = info
log.console = false
EOF
  # No plugins: no management UI, no Prometheus endpoint, no extra listeners.
  printf '[].\n' >"$RABBITMQ_ENABLED_PLUGINS_FILE"
  rm -f "$RABBITMQ_ADVANCED_CONFIG_FILE"
}

cmd_start() {
  local pid
  find_sbin || cmd_setup
  if pid=$(running_pid); then
    if amqp_answers; then
      log "already running (pid $pid) on $RMQ_HOST:$RABBITMQ_NODE_PORT"
      return 0
    fi
    log "running (pid $pid) but not answering yet; waiting"
    WAIT_PID=$pid wait_for "$RMQ_START_TIMEOUT" "AMQP on $RMQ_HOST:$RABBITMQ_NODE_PORT" amqp_answers ||
      die "pid $pid does not answer on $RMQ_HOST:$RABBITMQ_NODE_PORT; see $CONSOLE_LOG (try: $0 stop)"
    return 0
  fi
  if pid=$(wrapper_pid); then
    # Started by another call a moment ago; the VM has not written its pid yet.
    log "starting already (script pid $pid); waiting"
    WAIT_PID=$pid wait_for "$RMQ_START_TIMEOUT" "AMQP on $RMQ_HOST:$RABBITMQ_NODE_PORT" amqp_answers ||
      die "the node started by pid $pid does not answer; see $CONSOLE_LOG (try: $0 stop)"
    return 0
  fi
  need_cmd ss setsid timeout
  local port
  for port in "$RABBITMQ_NODE_PORT" "$RABBITMQ_DIST_PORT"; do
    if [[ -n $(port_listeners "$port") ]]; then
      die "port $port is already in use: $(port_listeners "$port" | awk '{print $4}' | tr '\n' ' ')"
    fi
  done
  # Make sure the distribution's node is not running beside ours.
  if [[ -n $(system_user_pids) ]]; then stop_system_service; fi
  write_config
  rm -f "$RABBITMQ_PID_FILE"

  log "starting rabbitmq-server $(pkg_version rabbitmq-server) as $RABBITMQ_NODENAME, AMQP on $RMQ_HOST:$RABBITMQ_NODE_PORT"
  local t0=$SECONDS
  printf '\n==== start %s ====\n' "$(date -Is)" >>"$CONSOLE_LOG"
  # The sbin script stays as a small sh parent of the Erlang VM and turns
  # SIGTERM into a clean shutdown. setsid: it outlives the calling shell.
  setsid "$RMQ_SBIN/rabbitmq-server" </dev/null >>"$CONSOLE_LOG" 2>&1 &
  local wpid=$!
  printf '%s\n' "$wpid" >"$WRAPPER_PID_FILE"
  if ! WAIT_PID=$wpid wait_for "$RMQ_START_TIMEOUT" "AMQP on $RMQ_HOST:$RABBITMQ_NODE_PORT" amqp_answers; then
    log "last lines of $CONSOLE_LOG:"
    tail -n 20 "$CONSOLE_LOG" >&2 || true
    cmd_stop || true
    die "rabbitmq did not come up; logs in $RABBITMQ_LOG_BASE"
  fi
  # The AMQP listener opens late in boot; confirm the node agrees it is up.
  CTL_TIMEOUT=$((RMQ_START_TIMEOUT + 10)) ctl -q await_startup --timeout "$RMQ_START_TIMEOUT" >/dev/null ||
    die "AMQP answers but 'rabbitmqctl await_startup' failed"
  pid=$(running_pid) || die "node is up but $RABBITMQ_PID_FILE has no live pid"
  log "up after $((SECONDS - t0))s (pid $pid, RSS $(($(rss_kib "$pid") / 1024)) MiB); logs: $RABBITMQ_LOG_BASE"
}

# --- stop / status / reset ---------------------------------------------------

cmd_stop() {
  local pid wpid="" stopped=""
  wpid=$(wrapper_pid) || wpid=""
  if pid=$(running_pid); then
    log "stopping $RABBITMQ_NODENAME (pid $pid)"
    if find_sbin && CTL_TIMEOUT=$RMQ_STOP_TIMEOUT ctl -q stop "$RABBITMQ_PID_FILE" >/dev/null 2>&1; then
      stopped=1
    else
      log "rabbitmqctl stop failed or timed out; signalling"
    fi
    terminate "$pid" "$( [[ -n $stopped ]] && echo 10 || echo "$RMQ_STOP_TIMEOUT")"
  elif [[ -z $wpid ]]; then
    rm -f "$RABBITMQ_PID_FILE" "$WRAPPER_PID_FILE"
    epmd_stop
    log "not running"
    return 0
  fi
  if [[ -n $wpid ]]; then terminate "$wpid" 10; fi
  rm -f "$RABBITMQ_PID_FILE" "$WRAPPER_PID_FILE"
  epmd_stop
  log "stopped"
}

cmd_status() {
  local pid
  if ! pid=$(running_pid); then
    log "stopped"
    return 3
  fi
  if amqp_answers; then
    log "running (pid $pid, RSS $(($(rss_kib "$pid") / 1024)) MiB), answering AMQP on $RMQ_HOST:$RABBITMQ_NODE_PORT"
    return 0
  fi
  log "running (pid $pid) but not answering on $RMQ_HOST:$RABBITMQ_NODE_PORT"
  return 1
}

cmd_reset() {
  cmd_stop
  log "deleting $RMQ_DIR"
  rm -rf "${RMQ_DIR:?}"
}

cmd_info() {
  cat <<EOF
RABBITMQ_VERSION=$(pkg_version rabbitmq-server)
RABBITMQ_URL=amqp://guest:guest@$RMQ_HOST:$RABBITMQ_NODE_PORT
RABBITMQ_NODENAME=$RABBITMQ_NODENAME
RABBITMQ_NODE_PORT=$RABBITMQ_NODE_PORT
RABBITMQ_DIST_PORT=$RABBITMQ_DIST_PORT
ERL_EPMD_PORT=$ERL_EPMD_PORT
RABBITMQ_DIR=$RMQ_DIR
RABBITMQ_LOG_BASE=$RABBITMQ_LOG_BASE
RABBITMQ_PID_FILE=$RABBITMQ_PID_FILE
EOF
}

# `ctl ARGS...` for the smoke test and for hand use: rabbitmqctl against the
# private node, with the private cookie and ports.
cmd_ctl() {
  find_sbin || die "rabbitmq-server is not installed (run: $0 setup)"
  ctl "$@"
}

case ${1:-} in
  setup) cmd_setup ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  reset) cmd_reset ;;
  info) cmd_info ;;
  ctl) shift; cmd_ctl "$@" ;;
  -h | --help | help) usage ;;
  *) usage; exit 2 ;;
esac
