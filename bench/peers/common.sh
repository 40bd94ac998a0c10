# shellcheck shell=bash
# Helpers shared by bench/peers/*/…sh. Sourced, never run.
#
# Everything a peer writes lives under $SLUICE_BENCH_CACHE (default
# ~/.cache/sluice-bench), outside the repository.

SLUICE_BENCH_CACHE=${SLUICE_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice-bench}

# The name the messages are prefixed with; each script sets PEER first.
PEER=${PEER:-peer}

log() { printf '%s: %s\n' "$PEER" "$*" >&2; }
die() { printf '%s: error: %s\n' "$PEER" "$*" >&2; exit 1; }

need_cmd() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || die "'$c' is not installed"
  done
}

# pid_alive PID: the process exists (and is not a zombie).
pid_alive() {
  local pid=${1:-}
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  local state
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ $state != Z ]]
}

# pid_cmdline_has PID STRING: the process's command line contains STRING
# (guards against a stale pid file whose pid was reused by something else).
pid_cmdline_has() {
  local pid=$1 want=$2
  [[ -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$want"
}

# read_pid FILE: prints the pid stored in FILE, if any.
read_pid() {
  local f=$1 pid
  [[ -s $f ]] || return 1
  pid=$(tr -dc '0-9' <"$f")
  [[ -n $pid ]] || return 1
  printf '%s\n' "$pid"
}

# port_open HOST PORT: something accepts TCP connections there.
port_open() {
  # shellcheck disable=SC2016 # $1/$2 expand in the inner bash
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# port_listeners PORT: the listening sockets on PORT, any address (empty if none).
port_listeners() {
  ss -Hltn "sport = :$1" 2>/dev/null || true
}

# wait_for TIMEOUT_S DESCRIPTION CMD...: run CMD every second until it succeeds
# or TIMEOUT_S seconds pass. If $WAIT_PID is set and that process dies, give up
# early.
wait_for() {
  local timeout=$1 what=$2
  shift 2
  local deadline=$((SECONDS + timeout))
  while ((SECONDS < deadline)); do
    if "$@" >/dev/null 2>&1; then
      return 0
    fi
    if [[ -n ${WAIT_PID:-} ]] && ! pid_alive "$WAIT_PID"; then
      log "process $WAIT_PID exited while waiting for $what"
      return 1
    fi
    sleep 1
  done
  log "timed out after ${timeout}s waiting for $what"
  return 1
}

# terminate PID TIMEOUT_S: SIGTERM, wait up to TIMEOUT_S, then SIGKILL.
terminate() {
  local pid=$1 timeout=$2
  pid_alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + timeout))
  while ((SECONDS < deadline)); do
    pid_alive "$pid" || return 0
    sleep 0.5
  done
  log "pid $pid still alive after ${timeout}s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  deadline=$((SECONDS + 10))
  while ((SECONDS < deadline)); do
    pid_alive "$pid" || return 0
    sleep 0.2
  done
  die "pid $pid survived SIGKILL"
}

# rss_kib PID: resident set size in KiB.
rss_kib() {
  awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null
}

# rss_tree_kib PID: RSS of PID plus all its descendants, in KiB.
rss_tree_kib() {
  local total=0 p kids r
  local -a todo=("$1")
  while ((${#todo[@]})); do
    p=${todo[0]}
    todo=("${todo[@]:1}")
    r=$(rss_kib "$p")
    total=$((total + ${r:-0}))
    kids=$(cat "/proc/$p/task/"*/children 2>/dev/null || true)
    for r in $kids; do todo+=("$r"); done
  done
  printf '%s\n' "$total"
}

# non_loopback_listeners PID...: listening TCP sockets of these processes whose
# address is not on 127.0.0.0/8 or ::1 (printed; empty means all loopback).
non_loopback_listeners() {
  local pid
  for pid in "$@"; do
    ss -Hltnp 2>/dev/null | grep -F "pid=$pid," |
      awk '{print $4}' | grep -vE '^(127\.[0-9.]+|\[::1\]|\[::ffff:127\.[0-9.]+\]):[0-9]+$' || true
  done
}
