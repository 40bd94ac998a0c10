#!/usr/bin/env bash
# Exercise the peer scripts end to end on this machine and report timings and
# idle memory: setup, start, status, a produce/consume round trip, idle RSS,
# stop, status (must say stopped), start again, start once more (must be a
# no-op), stop, stop once more (no-op). Checks that every listening socket of
# the peer is on loopback. Leaves the peers stopped.
#
# usage: bench/peers/smoke.sh [kafka] [rabbitmq]      (default: both)
#
# Environment: SMOKE_IDLE_SECONDS (20), how long a peer sits idle before its
# RSS is read; SMOKE_MESSAGES (1000 for Kafka, 50 for RabbitMQ) via
# SMOKE_KAFKA_MESSAGES / SMOKE_RABBITMQ_MESSAGES.
# RabbitMQ's round trip uses amqp-tools (Debian's rabbitmq-c command line
# tools) if installed; otherwise an AMQP handshake and `rabbitmqctl list_queues`.
set -euo pipefail

PEER=smoke
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/common.sh
. "$HERE/common.sh"

IDLE=${SMOKE_IDLE_SECONDS:-20}
KAFKA_N=${SMOKE_KAFKA_MESSAGES:-1000}
RMQ_N=${SMOKE_RABBITMQ_MESSAGES:-50}

passed=0
failed=0
declare -a report=()

ok() { passed=$((passed + 1)); log "ok: $*"; }
bad() { failed=$((failed + 1)); log "FAILED: $*"; }

# check DESCRIPTION CMD...: ok if CMD succeeds, bad otherwise.
check() {
  if "${@:2}"; then ok "$1"; else bad "$1"; fi
}

# check_status SCRIPT WANT WHEN: SCRIPT status exits WANT.
check_status() {
  local st=0
  "$1" status || st=$?
  if ((st == $2)); then ok "$3: status = $st"; else bad "$3: status = $st, want $2"; fi
}

# timed NAME CMD...: run CMD, record its wall time in seconds in $last_time.
last_time=0
timed() {
  local t0 t1 rc=0
  t0=$(date +%s.%N)
  "${@:2}" || rc=$?
  t1=$(date +%s.%N)
  last_time=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')
  log "$1: ${last_time}s (exit $rc)"
  return "$rc"
}

info_get() { "$1" info | awk -F= -v k="$2" '$1 == k {print substr($0, length(k) + 2)}'; }

# Listening sockets of PIDs not on loopback.
check_loopback() {
  local name=$1
  shift
  local off
  off=$(non_loopback_listeners "$@")
  local all
  all=$(for p in "$@"; do ss -Hltnp 2>/dev/null | grep -F "pid=$p," | awk '{print $4}'; done | sort -u | tr '\n' ' ')
  if [[ -z $off ]]; then
    ok "$name listens on loopback only: $all"
  else
    bad "$name listens off loopback: $off"
  fi
}

kafka_roundtrip() {
  local bootstrap=$1 topic got
  topic=smoke-$(date +%s)-$$
  seq 1 "$KAFKA_N" | sed 's/^/smoke message /' |
    timeout 60 kcat -b "$bootstrap" -P -t "$topic" || return 1
  got=$(timeout 60 kcat -b "$bootstrap" -C -t "$topic" -o beginning -e -q | wc -l)
  [[ $got -eq $KAFKA_N ]] || { log "consumed $got of $KAFKA_N"; return 1; }
  # A consumer group too (exercises the group coordinator and offsets topic).
  got=$(timeout 60 kcat -b "$bootstrap" -G "grp-$topic" -o beginning -e -q "$topic" | wc -l)
  [[ $got -eq $KAFKA_N ]] || { log "group consumer got $got of $KAFKA_N"; return 1; }
}

rabbitmq_roundtrip() {
  local script=$1 url=$2 q got i
  q=smoke-$(date +%s)-$$
  if command -v amqp-publish >/dev/null 2>&1; then
    amqp-declare-queue -u "$url" -q "$q" >/dev/null || return 1
    for ((i = 1; i <= RMQ_N; i++)); do
      amqp-publish -u "$url" -r "$q" -b "smoke message $i" || return 1
    done
    "$script" ctl -q list_queues name messages | grep -q "^${q}[[:space:]]${RMQ_N}\$" ||
      { log "list_queues does not show $RMQ_N messages in $q"; return 1; }
    got=$(timeout 60 amqp-consume -u "$url" -q "$q" -c "$RMQ_N" -- sh -c 'cat; echo' | grep -c '^smoke message') || true
    amqp-delete-queue -u "$url" -q "$q" >/dev/null || true
    [[ $got -eq $RMQ_N ]] || { log "consumed $got of $RMQ_N"; return 1; }
  else
    log "amqp-tools not installed: handshake and list_queues only"
    "$script" ctl -q list_queues name messages >/dev/null || return 1
  fi
}

run_peer() {
  local peer=$1 script=$HERE/$1/$1.sh pid t_setup t_start t_stop t_start2 t_noop rss
  log "==== $peer ===="
  timed "$peer setup" "$script" setup || { bad "$peer setup"; return; }
  t_setup=$last_time
  timed "$peer start" "$script" start || { bad "$peer start"; return; }
  t_start=$last_time
  check_status "$script" 0 "$peer after start"

  local pids=()
  if [[ $peer == kafka ]]; then
    pid=$(read_pid "$(info_get "$script" KAFKA_PID_FILE)")
    pids=("$pid")
    check "kafka produce/consume $KAFKA_N messages" \
      kafka_roundtrip "$(info_get "$script" KAFKA_BOOTSTRAP)"
  else
    pid=$(read_pid "$(info_get "$script" RABBITMQ_PID_FILE)")
    local epmd_pid
    epmd_pid=$(ss -Hltnp "sport = :$(info_get "$script" ERL_EPMD_PORT)" 2>/dev/null |
      grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2 || true)
    pids=("$pid" ${epmd_pid:+"$epmd_pid"})
    check "rabbitmq publish/consume $RMQ_N messages" \
      rabbitmq_roundtrip "$script" "$(info_get "$script" RABBITMQ_URL)"
  fi
  check_loopback "$peer" "${pids[@]}"

  log "$peer: idle for ${IDLE}s before reading RSS"
  sleep "$IDLE"
  rss=$(($(rss_tree_kib "$pid") / 1024))
  log "$peer: idle RSS ${rss} MiB (pid $pid and children)"

  timed "$peer stop" "$script" stop || bad "$peer stop"
  t_stop=$last_time
  check_status "$script" 3 "$peer after stop"
  if pid_alive "$pid"; then bad "$peer pid $pid still alive after stop"; fi

  timed "$peer start again" "$script" start || bad "$peer start again"
  t_start2=$last_time
  timed "$peer start while running" "$script" start || bad "$peer start while running"
  t_noop=$last_time
  check_status "$script" 0 "$peer after restart"
  timed "$peer stop" "$script" stop || bad "$peer stop (2)"
  check "$peer stop while stopped" "$script" stop
  check_status "$script" 3 "$peer at the end"

  report+=("| $peer | ${t_setup}s | ${t_start}s | ${t_start2}s | ${t_noop}s | ${t_stop}s | ${rss} MiB |")
}

peers=("$@")
((${#peers[@]})) || peers=(kafka rabbitmq)
for p in "${peers[@]}"; do
  case $p in
    kafka | rabbitmq) run_peer "$p" ;;
    *) die "unknown peer '$p' (kafka, rabbitmq)" ;;
  esac
done

printf '\n| peer | setup | start (first) | start (again) | start (running) | stop | idle RSS |\n'
printf '|---|---|---|---|---|---|---|\n'
printf '%s\n' "${report[@]}"
printf '\nsmoke: %d passed, %d failed\n' "$passed" "$failed"
((failed == 0))
