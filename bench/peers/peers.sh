#!/usr/bin/env bash
# Run one subcommand on several benchmark peers.
#
# usage: bench/peers/peers.sh setup|start|stop|status|reset|info [kafka] [rabbitmq]
#        (no peer named: both)
#
# Exit status: 0 if the subcommand succeeded for every peer, else the last
# non-zero status (for `status`: 3 = a peer is stopped, 1 = not answering).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

cmd=${1:-}
case $cmd in
  setup | start | stop | status | reset | info) shift ;;
  *)
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
    exit 2
    ;;
esac

peers=("$@")
((${#peers[@]})) || peers=(kafka rabbitmq)

rc=0
for p in "${peers[@]}"; do
  case $p in
    kafka | rabbitmq) ;;
    *) echo "peers: unknown peer '$p' (kafka, rabbitmq)" >&2; exit 2 ;;
  esac
  "$HERE/$p/$p.sh" "$cmd" || rc=$?
done
exit "$rc"
