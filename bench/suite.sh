#!/usr/bin/env bash
# bench/suite.sh — run the benchmark suite against Sluice, Kafka and RabbitMQ
# and regenerate docs/BENCHMARKS.md (plus docs/bench/*.png) from the results.
#
# usage: bench/suite.sh [--quick] [--build DIR] [--systems "sluice sluice-kafka kafka rabbitmq"]
#        bench/suite.sh --report-only [RESULTS.json]
#
#   --quick        each run 3 s after a 1 s warm-up, every workload (about
#                  2 minutes); default: 20 s after 4 s warm-up (about 12
#                  minutes)
#   --build DIR    CMake build directory (default: build/); it is configured
#                  (Release) if needed and sluice-bench + sluiced are built
#   --systems LIST which systems to run, a space-separated subset of
#                  "sluice sluice-kafka kafka rabbitmq" (sluice-kafka:
#                  sluiced through its Kafka listener, driven by librdkafka)
#   --report-only  skip the runs; regenerate the report from RESULTS.json
#                  (default: the newest file in bench/results/)
#
# Results: bench/results/<date>-<host>.json, a JSON array: a "meta" object
# (machine, versions, suite settings) followed by one object per run, as
# sluice-bench --json prints it plus a "suite" member (workload id, title).
# The peers (Kafka, RabbitMQ) are set up and started before the runs and
# stopped on exit. Progress goes to stderr.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
QUICK=0
BUILD="$ROOT/build"
SYSTEMS="sluice sluice-kafka kafka rabbitmq"
REPORT_ONLY=0
REPORT_FILE=""

log() { printf 'suite: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
    sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --build) [ $# -ge 2 ] || die "--build needs a directory"; BUILD=$2; shift ;;
        --build=*) BUILD=${1#--build=} ;;
        --systems) [ $# -ge 2 ] || die "--systems needs a list"; SYSTEMS=$2; shift ;;
        --systems=*) SYSTEMS=${1#--systems=} ;;
        --report-only)
            REPORT_ONLY=1
            if [ $# -ge 2 ] && [ "${2#--}" = "$2" ]; then REPORT_FILE=$2; shift; fi
            ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
    shift
done

for s in $SYSTEMS; do
    case "$s" in sluice|sluice-kafka|kafka|rabbitmq) ;; *) die "unknown system '$s' (sluice, sluice-kafka, kafka, rabbitmq)" ;; esac
done
[ -n "${SYSTEMS// /}" ] || die "--systems is empty"

has_system() { case " $SYSTEMS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# ---------------------------------------------------------------- tools ---
ensure_tools() {
    local missing=()
    command -v jq >/dev/null 2>&1 || missing+=(jq)
    command -v gnuplot >/dev/null 2>&1 || missing+=(gnuplot-nox)
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "missing ${missing[*]}; run as root or install them"
    log "installing ${missing[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; then
        apt-get update -q >&2
        apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
    fi
}

# --------------------------------------------------------------- report ---
# gen_report RESULTS.json: writes docs/BENCHMARKS.md and docs/bench/*.png.
gen_report() {
    local res=$1 md="$ROOT/docs/BENCHMARKS.md" pngdir="$ROOT/docs/bench"
    local rel term ids id
    [ -s "$res" ] || die "no results file '$res'"
    jq -e 'type == "array"' "$res" >/dev/null || die "$res is not a JSON array"
    rel=${res#"$ROOT"/}
    mkdir -p "$pngdir"
    rm -f "$pngdir"/*.png
    term="pngcairo size 800,450 font 'sans,10'"
    gnuplot -e 'set terminal pngcairo' >/dev/null 2>&1 || term="png size 800,450"
    ids=$(jq -r '[.[] | select(.suite?) | .suite.id] | unique | .[]' "$res")

    local tmp
    tmp=$(mktemp -d)

    # Throughput bars, one plot per workload.
    for id in $ids; do
        jq -r --arg id "$id" '.[] | select(.suite?.id == $id and (.error | not))
            | "\(.suite.system) \(.produce_msgs_s) \(.consume_msgs_s)"' "$res" >"$tmp/tp-$id.dat"
        [ -s "$tmp/tp-$id.dat" ] || continue
        local title
        title=$(jq -r --arg id "$id" 'first(.[] | select(.suite?.id == $id) | .suite.title)' "$res")
        gnuplot <<EOF
set terminal $term
set output '$pngdir/throughput-$id.png'
set title "($id) ${title//\"/} — throughput"
set ylabel 'messages/s'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set yrange [0:*]
set grid ytics
set key top right
set xtics scale 0
set format y '%.1s%c'
plot '$tmp/tp-$id.dat' using 2:xtic(1) title 'produce', '' using 3 title 'consume'
EOF
    done

    # Latency percentiles for the fixed-rate workloads (d*).
    jq -r '.[] | select((.suite?.id // "") | startswith("d")) | select(.error | not)
        | "\(.suite.system)@\(.workload.rate / 1000 | floor)k \(.e2e_p50_us / 1000) \(.e2e_p99_us / 1000) \(.e2e_p999_us / 1000) \(.send_delay_p99_us / 1000)"' \
        "$res" >"$tmp/lat.dat"
    if [ -s "$tmp/lat.dat" ]; then
        gnuplot <<EOF
set terminal $term
set output '$pngdir/latency-d.png'
set title "(d) end-to-end latency at fixed rates, 1 KiB messages (log scale)"
set ylabel 'ms'
set logscale y
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set grid ytics
set key top left
set xtics scale 0
plot '$tmp/lat.dat' using 2:xtic(1) title 'e2e p50', '' using 3 title 'e2e p99', '' using 4 title 'e2e p99.9', '' using (\$5 > 0 ? \$5 : 1/0) title 'send delay p99'
EOF
    fi

    {
        jq -r --arg rel "$rel" '
          (.[] | select(.kind? == "meta")) as $m |
          "# Benchmarks: Sluice vs Kafka vs RabbitMQ",
          "",
          "Generated by `bench/suite.sh` from `\($rel)` (\($m.started) .. \($m.finished),",
          "\($m.mode) run, \($m.wall_s) s wall clock). Do not edit by hand: run",
          "`bench/suite.sh\(if $m.mode == "quick" then " --quick" else "" end)` (or `bench/suite.sh --report-only`) again.",
          (if $m.mode == "quick" then
            "", "**This is a `--quick` run:** \($m.duration_s) s per run after \($m.warmup_s) s warm-up.",
            "It shows that the suite works and gives rough figures; use a full run",
            "(`bench/suite.sh`, \($m.full_duration_s) s per run) for numbers to quote."
           else empty end),
          "",
          "## Machine",
          "",
          "| | |",
          "|---|---|",
          "| host | `\($m.host)` |",
          "| CPUs (nproc) | \($m.nproc) |",
          "| CPU model | \($m.cpu_model) |",
          "| memory | \($m.mem_mib) MiB |",
          "| kernel | `\($m.kernel)` |",
          "",
          "Everything (brokers and the `sluice-bench` client) runs on this one machine",
          "over loopback, so client and broker compete for the same \($m.nproc) CPUs.",
          "",
          "## Versions",
          "",
          "| | |",
          "|---|---|",
          "| Sluice (`sluiced`) | \($m.sluice_version) |",
          "| Apache Kafka | \($m.kafka_version) (KRaft, one node, `bench/peers/kafka/kafka.sh`) |",
          "| RabbitMQ | \($m.rabbitmq_version) (one node, `bench/peers/rabbitmq/rabbitmq.sh`) |",
          "| sluice-bench | built from the same tree, `\($m.build_dir)` (\($m.build_type)) |",
          "",
          "Each system is driven by the same `sluice-bench` workload code; see",
          "`bench/workload.h` for what every flag means. Kafka is driven with",
          "librdkafka, RabbitMQ over AMQP 0-9-1 (partitions become queues,",
          "acks become publisher confirms). For `--system sluice` the bench starts",
          "a private `sluiced` in a temporary directory for each run; so does",
          "`--system sluice-kafka`, which drives that `sluiced` through its Kafka",
          "listener with librdkafka and exactly the settings of the `kafka` row",
          "(docs/kafka-compat.md).",
          "",
          "## Workloads",
          "",
          "| id | workload | msg size | producers | consumers | partitions | acks | batch | linger ms | compression | rate (msgs/s) | duration s | warm-up s | systems |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
          ( [ .[] | select(.suite?) ] | group_by(.suite.id)[] | . as $g | $g[0] as $r |
            ([ $g[] | select(.workload) ][0].workload // {}) as $w |
            "| \($r.suite.id) | \($r.suite.title) | \($w.message_size) B | \($w.producers) | \($w.consumers) | \($w.partitions) | \($w.acks) | \($w.batch_size) B | \($w.linger_ms) | \($w.compression) | \(if $w.rate == 0 then "closed loop" else ($w.rate|tostring) end) | \($w.duration_s) | \($w.warmup_s) | \([$g[].suite.system] | join(", ")) |" ),
          "",
          "Closed loop means the producers send as fast as the client library",
          "accepts messages; the end-to-end latency of a closed-loop run is then",
          "mostly time spent queued behind earlier messages (it grows with the",
          "client buffers), so it says little about the broker. Latency is",
          "measured properly in the open-loop runs (d), where it is taken from each",
          "message'"'"'s intended send time (so stalls count, no coordinated",
          "omission), and `send delay p99` shows how late the producer got.",
          "",
          "**Durability (c).** `--acks all` means: Sluice acknowledges once the",
          "partition is `fdatasync`ed (group commit, see `docs/broker.md`); RabbitMQ",
          "declares durable queues, publishes persistent messages and waits for",
          "publisher confirms (see `bench/drv_rabbitmq.c`);",
          "**Kafka'"'"'s `acks=all` only waits for the in-sync replicas (here just the",
          "leader) to write to the page cache — it does not fsync by default** (Kafka relies",
          "on replication, and flushes on its own schedule), so a default Kafka row",
          "would not be a durable-to-disk figure. The suite therefore runs Kafka",
          "twice in (c): `kafka` with the topic config `flush.messages=1`",
          "(`sluice-bench --topic-config`; Kafka then fsyncs the log before it",
          "acknowledges each append, the guarantee Sluice gives) and",
          "`kafka-nofsync` with Kafka'"'"'s defaults, for reference.",
          ""
        ' "$res"

        local first=1
        for id in $ids; do
            if [ $first -eq 1 ]; then
                printf '## Results\n\n'
                printf 'Columns: produce/consume msgs/s and consume MB/s (MB = 10^6 bytes)\n'
                printf 'over the measured phase; end-to-end latency percentiles in ms;\n'
                printf 'send delay p99 (open loop only); broker CPU seconds used during the\n'
                printf 'run and its peak RSS; messages lost and duplicated (checked per\n'
                printf 'message by sequence numbers). Ratios: Sluice divided by the other\n'
                printf 'system (throughput > 1 and latency < 1 favour Sluice).\n\n'
                first=0
            fi
            jq -r --arg id "$id" '
              def f(d): if . == null then "–" else (. * pow(10; d) | round / pow(10; d) | tostring) end;
              def ms: if . == null then "–" else (. / 1000 | if . >= 100 then f(0) elif . >= 10 then f(1) else f(2) end) end;
              def ratio(a; b): if (a == null or b == null or b == 0) then "–" elif a == 0 then "0×"
                else (a / b | . as $x | f([2, (1 - ($x | log10 | floor))] | max) + "×") end;
              [ .[] | select(.suite?.id == $id) ] as $rows | $rows[0].suite as $s |
              "### (\($id)) \($s.title)", "",
              "`\($s.args)`", "",
              (if $s.note then $s.note, "" else empty end),
              "| system | produce msgs/s | consume msgs/s | MB/s | e2e p50 ms | e2e p99 ms | e2e p99.9 ms | send delay p99 ms | broker CPU s | broker RSS MiB | lost | duplicated |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
              ( $rows[] |
                if .error then "| \(.suite.system) | failed: \(.error) | | | | | | | | | | |"
                else "| \(.suite.system)\(if .suite.extra then " (`\(.suite.extra)`)" else "" end) | \(.produce_msgs_s | f(0)) | \(.consume_msgs_s | f(0)) | \(.consume_mb_s | f(1)) | \(.e2e_p50_us | ms) | \(.e2e_p99_us | ms) | \(.e2e_p999_us | ms) | \(if .workload.rate > 0 then (.send_delay_p99_us | ms) else "–" end) | \(.broker_cpu_s | f(2)) | \(.broker_rss_mb | f(0)) | \(.lost) | \(.duplicated) |" end ),
              "",
              ( [ $rows[] | select(.error | not) | {key: .suite.system, value: .} ] | from_entries ) as $by |
              ( if $by.sluice then
                  ( ["kafka", "Kafka"], ["kafka-nofsync", "Kafka without fsync"], ["rabbitmq", "RabbitMQ"] ) as [$k, $name] |
                  select($by[$k]) |
                  "- Sluice/\($name): consume msgs/s \(ratio($by.sluice.consume_msgs_s; $by[$k].consume_msgs_s)), e2e p50 \(ratio($by.sluice.e2e_p50_us; $by[$k].e2e_p50_us)), e2e p99 \(ratio($by.sluice.e2e_p99_us; $by[$k].e2e_p99_us)), broker CPU s \(ratio($by.sluice.broker_cpu_s; $by[$k].broker_cpu_s)), broker RSS \(ratio($by.sluice.broker_rss_mb; $by[$k].broker_rss_mb))"
                else empty end ),
              ( if $by["sluice-kafka"] and $by.kafka then
                  "- Sluice through its Kafka listener / Kafka, both driven by librdkafka with the same settings: consume msgs/s \(ratio($by["sluice-kafka"].consume_msgs_s; $by.kafka.consume_msgs_s)), e2e p99 \(ratio($by["sluice-kafka"].e2e_p99_us; $by.kafka.e2e_p99_us)), broker CPU s \(ratio($by["sluice-kafka"].broker_cpu_s; $by.kafka.broker_cpu_s)), broker RSS \(ratio($by["sluice-kafka"].broker_rss_mb; $by.kafka.broker_rss_mb))"
                else empty end ),
              ""
            ' "$res"
            if [ -f "$pngdir/throughput-$id.png" ]; then
                printf '![(%s) throughput](bench/throughput-%s.png)\n\n' "$id" "$id"
            fi
        done
        if [ -f "$pngdir/latency-d.png" ]; then
            printf '### Latency percentiles at fixed rates (d)\n\n'
            printf '![(d) latency percentiles](bench/latency-d.png)\n\n'
        fi
        jq -r '
          (.[] | select(.kind? == "meta")) as $m |
          ( [ .[] | select(.suite?) | .suite.id ] | unique ) as $done |
          ( [ $m.all_workloads[] | select(.id as $i | $done | index($i) | not) ] ) as $skipped |
          "## Not done",
          "",
          (if ($skipped | length) > 0 then
             ( $skipped[] | "- (\(.id)) \(.title): not part of a \($m.mode) run (run `bench/suite.sh` without `--quick`)." )
           else empty end),
          (if ([ .[] | select(.error?) ] | length) > 0 then
             ( .[] | select(.error?) | "- (\(.suite.id)) \(.suite.system) failed: \(.error)" )
           else empty end),
          "",
          "Raw results: `\($m.results_file)`."
        ' "$res"
    } >"$md.tmp"
    mv "$md.tmp" "$md"
    rm -rf "$tmp"
    log "wrote ${md#"$ROOT"/} and $(find "$pngdir" -name '*.png' | wc -l) plot(s) in ${pngdir#"$ROOT"/}/"
}

ensure_tools

if [ $REPORT_ONLY -eq 1 ]; then
    if [ -z "$REPORT_FILE" ]; then
        REPORT_FILE=$(find "$ROOT/bench/results" -maxdepth 1 -name '*.json' 2>/dev/null | sort | tail -n 1)
        [ -n "$REPORT_FILE" ] || die "no results in bench/results/"
    fi
    gen_report "$REPORT_FILE"
    exit 0
fi

# ---------------------------------------------------------------- build ---
case "$BUILD" in /*) ;; *) BUILD="$PWD/$BUILD" ;; esac
# Always (re)configured as a plain Release build: a sanitizer or debug
# build left in the same directory would measure the instrumentation.
log "configuring $BUILD (Release, no sanitizers)"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DSLUICE_SANITIZE=OFF >/dev/null
log "building sluice-bench and sluiced in $BUILD"
cmake --build "$BUILD" -j"$(nproc)" --target sluice-bench sluiced >&2
BENCH="$BUILD/bench/sluice-bench"
SLUICED="$BUILD/broker/sluiced"
[ -x "$BENCH" ] || die "no $BENCH after the build"
BUILD_TYPE=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$BUILD/CMakeCache.txt")

# ---------------------------------------------------------------- peers ---
KAFKA_SH="$ROOT/bench/peers/kafka/kafka.sh"
RABBITMQ_SH="$ROOT/bench/peers/rabbitmq/rabbitmq.sh"
STARTED_PEERS=()
TMPDIR_SUITE=$(mktemp -d)

cleanup() {
    local rc=$? p
    for p in "${STARTED_PEERS[@]}"; do
        log "stopping $p"
        case "$p" in
            kafka) "$KAFKA_SH" stop || true ;;
            rabbitmq) "$RABBITMQ_SH" stop || true ;;
        esac
    done
    rm -rf "$TMPDIR_SUITE"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

info_val() { # info_val SCRIPT KEY
    "$1" info 2>/dev/null | sed -n "s/^$2=//p" | head -n 1
}

KAFKA_BOOT=""
RABBITMQ_BOOT=""
if has_system kafka; then
    log "kafka: setup + start"
    "$KAFKA_SH" setup
    STARTED_PEERS+=(kafka)
    "$KAFKA_SH" start
    KAFKA_BOOT=$(info_val "$KAFKA_SH" KAFKA_BOOTSTRAP)
    KAFKA_BOOT=${KAFKA_BOOT:-127.0.0.1:19092}
fi
if has_system rabbitmq; then
    log "rabbitmq: setup + start"
    "$RABBITMQ_SH" setup
    STARTED_PEERS+=(rabbitmq)
    "$RABBITMQ_SH" start
    RABBITMQ_BOOT="127.0.0.1:$(info_val "$RABBITMQ_SH" RABBITMQ_NODE_PORT)"
    [ "$RABBITMQ_BOOT" != "127.0.0.1:" ] || RABBITMQ_BOOT=127.0.0.1:15673
fi

# ------------------------------------------------------------- versions ---
SLUICE_VERSION=""
if SLUICE_VERSION=$("$SLUICED" --version 2>/dev/null) && [ -n "$SLUICE_VERSION" ]; then
    SLUICE_VERSION=$(printf '%s' "$SLUICE_VERSION" | head -n 1)
else
    SLUICE_VERSION="git $(git -C "$ROOT" describe --always --dirty --tags 2>/dev/null || echo unknown) (sluiced has no --version)"
fi
KAFKA_VERSION="not run"
if has_system kafka; then KAFKA_VERSION=$(info_val "$KAFKA_SH" KAFKA_VERSION); fi
RABBITMQ_VERSION="not run"
if has_system rabbitmq; then
    RABBITMQ_VERSION=$("$RABBITMQ_SH" ctl version 2>/dev/null | tail -n 1 || true)
    if [ -z "$RABBITMQ_VERSION" ]; then
        RABBITMQ_VERSION="$(info_val "$RABBITMQ_SH" RABBITMQ_VERSION) (package)"
    fi
fi

# ------------------------------------------------------------ workloads ---
if [ $QUICK -eq 1 ]; then
    MODE=quick DUR=3 WARM=1
else
    MODE=full DUR=20 WARM=4
fi
FULL_DUR=20

# id|title|sluice-bench args|in quick run (1/0)|note|extra args for the kafka
# run|label of an extra kafka run without those extra args (empty: none)
WORKLOADS=(
"a|100 B messages, 1 producer, 1 consumer, 1 partition, acks=1, closed loop|--message-size 100 --producers 1 --consumers 1 --partitions 1 --acks 1|1|"
"b|1 KiB messages, 4 partitions, acks=1, closed loop|--message-size 1K --producers 1 --consumers 1 --partitions 4 --acks 1|1|"
"c|durable: 1 KiB messages, 1 partition, acks=all, closed loop|--message-size 1K --producers 1 --consumers 1 --partitions 1 --acks all|1|The kafka row sets the topic config flush.messages=1 (an fsync before each acknowledgement, Sluice's guarantee); kafka-nofsync is Kafka's default, which acknowledges page-cache writes only. See Durability above.|--topic-config flush.messages=1|kafka-nofsync"
"d10k|latency at 10000 msgs/s, 1 KiB messages, open loop|--message-size 1K --producers 1 --consumers 1 --partitions 1 --acks 1 --linger-ms 0 --rate 10000|1|"
"d50k|latency at 50000 msgs/s, 1 KiB messages, open loop|--message-size 1K --producers 1 --consumers 1 --partitions 1 --acks 1 --linger-ms 0 --rate 50000|1|"
"e|1 topic, 100 partitions, 1 KiB messages, 50000 msgs/s|--message-size 1K --producers 1 --consumers 1 --partitions 100 --acks 1 --rate 50000|1|"
)

mkdir -p "$ROOT/bench/results"
HOST=$(hostname -s 2>/dev/null || hostname)
STAMP=$(date -u +%Y-%m-%dT%H%M%SZ)
RESULTS="$ROOT/bench/results/$STAMP-$HOST.json"
LINES="$TMPDIR_SUITE/runs.jsonl"
: >"$LINES"
START_EPOCH=$(date +%s)
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)

n_runs=0
for wl in "${WORKLOADS[@]}"; do
    IFS='|' read -r id _ _ inq _ _ klabel <<<"$wl"
    if [ $QUICK -eq 1 ] && [ "$inq" != 1 ]; then continue; fi
    for s in $SYSTEMS; do
        n_runs=$((n_runs + 1))
        if [ "$s" = kafka ] && [ -n "$klabel" ]; then n_runs=$((n_runs + 1)); fi
    done
done

i=0
ALL_WL_JSON="[]"
for wl in "${WORKLOADS[@]}"; do
    IFS='|' read -r id title args inq note kextra klabel <<<"$wl"
    ALL_WL_JSON=$(jq -c --arg id "$id" --arg t "$title" '. + [{id: $id, title: $t}]' <<<"$ALL_WL_JSON")
    if [ $QUICK -eq 1 ] && [ "$inq" != 1 ]; then continue; fi
    # Each run: "label system extra-args"; the label names the row.
    runs=()
    for s in $SYSTEMS; do
        if [ "$s" = kafka ]; then
            runs+=("kafka|kafka|$kextra")
            [ -z "$klabel" ] || runs+=("$klabel|kafka|")
        else
            runs+=("$s|$s|")
        fi
    done
    for run in "${runs[@]}"; do
        IFS='|' read -r label s extra <<<"$run"
        i=$((i + 1))
        boot=()
        case "$s" in
            kafka) boot=(--bootstrap "$KAFKA_BOOT") ;;
            rabbitmq) boot=(--bootstrap "$RABBITMQ_BOOT") ;;
        esac
        read -r -a argv <<<"$args $extra"
        cmd=("$BENCH" --system "$s" "${argv[@]}" --duration "$DUR" --warmup "$WARM" --json "${boot[@]}")
        log "[$i/$n_runs] ($id) $label: $title"
        out="$TMPDIR_SUITE/run.out"
        err="$TMPDIR_SUITE/run.err"
        t0=$(date +%s)
        if "${cmd[@]}" >"$out" 2>"$err" && tail -n 1 "$out" | jq -e 'type == "object"' >/dev/null 2>&1; then
            tail -n 1 "$out" | jq -c --arg id "$id" --arg t "$title" --arg a "sluice-bench --system SYSTEM $args --duration $DUR --warmup $WARM" \
                --arg n "$note" --arg s "$label" --arg x "$extra" \
                '. + {suite: {id: $id, title: $t, system: $s, args: $a, extra: (if $x == "" then null else $x end), note: (if $n == "" then null else $n end)}}' >>"$LINES"
            tail -n 1 "$LINES" | jq -r '"suite:   -> \(.produce_msgs_s | round) msgs/s produced, \(.consume_msgs_s | round) consumed, e2e p99 \(.e2e_p99_us / 1000 | . * 100 | round / 100) ms, lost \(.lost), dup \(.duplicated)"' >&2
        else
            rc=$?
            msg=$(grep -v '^$' "$err" | tail -n 1 | cut -c1-200)
            log "   -> FAILED (rc $rc): $msg"
            jq -nc --arg id "$id" --arg t "$title" --arg a "sluice-bench --system SYSTEM $args --duration $DUR --warmup $WARM" \
                --arg n "$note" --arg s "$label" --arg x "$extra" --arg e "${msg:-exit status $rc}" \
                '{error: $e, suite: {id: $id, title: $t, system: $s, args: $a, extra: (if $x == "" then null else $x end), note: (if $n == "" then null else $n end)}}' >>"$LINES"
        fi
        log "   ($(($(date +%s) - t0)) s)"
    done
done

FINISH_EPOCH=$(date +%s)
CPU_MODEL=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
jq -n \
    --arg host "$HOST" --argjson nproc "$(nproc)" --arg cpu "${CPU_MODEL:-unknown}" \
    --argjson mem "$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 }' /proc/meminfo)" \
    --arg kernel "$(uname -srm)" --arg sv "$SLUICE_VERSION" --arg kv "$KAFKA_VERSION" --arg rv "$RABBITMQ_VERSION" \
    --arg bd "${BUILD#"$ROOT"/}" --arg bt "${BUILD_TYPE:-unknown}" --arg mode "$MODE" \
    --argjson dur "$DUR" --argjson warm "$WARM" --argjson fdur "$FULL_DUR" \
    --arg started "$STARTED" --arg finished "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    --argjson wall "$((FINISH_EPOCH - START_EPOCH))" --arg systems "$SYSTEMS" \
    --arg rf "${RESULTS#"$ROOT"/}" --argjson wls "$ALL_WL_JSON" \
    '{kind: "meta", host: $host, nproc: $nproc, cpu_model: $cpu, mem_mib: $mem, kernel: $kernel,
      sluice_version: $sv, kafka_version: $kv, rabbitmq_version: $rv, build_dir: $bd, build_type: $bt,
      mode: $mode, duration_s: $dur, warmup_s: $warm, full_duration_s: $fdur, systems: ($systems | split(" ") | map(select(. != ""))),
      started: $started, finished: $finished, wall_s: $wall, results_file: $rf, all_workloads: $wls}' \
    >"$TMPDIR_SUITE/meta.json"
jq -s '.' "$TMPDIR_SUITE/meta.json" "$LINES" >"$RESULTS"
log "results: ${RESULTS#"$ROOT"/} ($(jq 'length - 1' "$RESULTS") runs, $((FINISH_EPOCH - START_EPOCH)) s)"

NEWEST=$(find "$ROOT/bench/results" -maxdepth 1 -name '*.json' | sort | tail -n 1)
gen_report "$NEWEST"
log "done"
