#!/usr/bin/env bash
# Benchmark warren against RabbitMQ on this machine with the same load generator
# (warren-perf), in one run: every scenario alternates between the two brokers
# (A B A B ..., BENCH_ROUNDS rounds, median reported), the load average is recorded before
# each run, and bench/RESULTS.md is rewritten.
#
#   bash bench/compare.sh            full comparison (BENCH_SECONDS per run, default 10;
#                                    BENCH_ROUNDS, default 3); installs Debian's
#                                    rabbitmq-server if it is missing
#   bash bench/compare.sh --smoke    warren only, 2 s per scenario, no RESULTS.md: proves the
#                                    tool and the scenarios work (CI runs this; no speed is
#                                    asserted)
#   BENCH_ONLY="S1 S4" bash bench/compare.sh    a subset
#   BENCH_CLIENT=lapin bash bench/compare.sh    the client warren-perf uses, passed as
#                                    --client to every call: lean (default; the hand-written
#                                    protocol code, so the generator is not the bottleneck) or
#                                    lapin (the lapin library, as an application would)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
smoke=0 render=
[ "${1:-}" = "--smoke" ] && smoke=1
# --render FILE: no runs; RESULTS.md from the JSON lines of earlier runs ("S1 round 1 warren:
# {...}" lines of a log, or bare JSON lines).
[ "${1:-}" = "--render" ] && render=${2:?--render needs a file}
secs=${BENCH_SECONDS:-10}
rounds=${BENCH_ROUNDS:-3}
s7_count=${BENCH_S7_COUNT:-1000000}
idle_count=${BENCH_IDLE:-10000}
deep_count=${BENCH_DEEP:-1000000}
client=${BENCH_CLIENT:-lean}
case $client in lean|lapin) ;; *) echo "BENCH_CLIENT must be lean or lapin, not '$client'" >&2; exit 2 ;; esac
if [ $smoke = 1 ]; then secs=2; rounds=1; s7_count=20000; idle_count=200; deep_count=20000; fi

cd "$root"
[ -z "$render" ] && cargo build --release --bins >&2
# The binaries are where cargo put them (CARGO_TARGET_DIR is honoured).
bin_dir=${CARGO_TARGET_DIR:-target}
case $bin_dir in /*) ;; *) bin_dir=$root/$bin_dir ;; esac
bin_dir=$bin_dir/release
perf_bin=$bin_dir/warren-perf
perf() { "$perf_bin" --client "$client" "$@"; }
export WARREN_BIN=$bin_dir/warren

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
work=$(mktemp -d "${TMPDIR:-/tmp}/warren-bench-XXXXXX")
chmod 755 "$work"
brokers=(warren)
[ $smoke = 0 ] && brokers+=(rabbitmq)
declare -A url
cleanup() {
  bash "$root/interop/broker.sh" stop "$work/warren" 2>/dev/null || true
  [ -d "$work/rabbitmq" ] && bash "$root/interop/broker.sh" stop "$work/rabbitmq" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
if [ -n "$render" ]; then
  brokers=()
  sed -n 's/^S[0-9]* round [0-9]* [a-z]*: //p; /^{/p' "$render" | awk '!seen[$0]++' >"$work/rendered.jsonl"
fi
[ -n "$render" ] || {
p=$(free_port); bash "$root/interop/broker.sh" start warren "$work/warren" "$p"
url[warren]="amqp://guest:guest@127.0.0.1:$p/%2f"
if [ $smoke = 0 ]; then
  p=$(free_port); bash "$root/interop/broker.sh" start oracle "$work/rabbitmq" "$p"
  url[rabbitmq]="amqp://guest:guest@127.0.0.1:$p/%2f"
fi
}

# name | flags | what the target is about
scenarios=(
  "S1|-x1 -y1 -s16 -a0|transient 16 B, 1 producer / 1 consumer, no-ack"
  "S2|-x1 -y1 -s16 -q1000 -a100|transient 16 B, prefetch 1000, multi-ack every 100"
  "S3|-x1 -y1 -s1024 -a0|transient 1 KiB, no-ack"
  "S4|-x1 -y1 -s16 --persistent --durable -c100 -q1000 -a100|persistent, durable queue, confirm window 100"
  "S5|-x1 -y1 -s16 --persistent --durable -c1 -q1000 -a100|persistent, confirm window 1"
  "S6|-x1 -y1 -s16 -r10000 -a0|rate 10k/s: end-to-end latency"
  "S7|S7|publish $s7_count x 16 B, then drain (prefetch 1000, ack every 100)"
  "S8|-x4 -y4 --queues 4 -s16 -a0|4 producers / 4 consumers on 4 queues"
  "S9|-x1 -y10 --fanout 10 -s16 -a0|fanout to 10 queues"
  "S10|S10|memory: $idle_count idle connections (RSS MiB before / with them)"
  "S11|S11|memory: $deep_count x 1 KiB persistent messages queued (RSS MiB before / with them)"
)

pid_of() { cat "$work/$1/pid"; }
rss_mib() { awk '/^VmRSS/ {printf "%.0f", $2/1024}' "/proc/$(pid_of "$1")/status"; }
# write(2)-family calls the broker has made (every thread), for deliveries per write.
writes_of() { awk '/^syscw/ {print $2}' "/proc/$(pid_of "$1")/io"; }

results=$work/results.jsonl
: >"$results"
[ -n "$render" ] && cp "$work/rendered.jsonl" "$results"
run() { # broker scenario round flags...
  local b=$1 s=$2 r=$3; shift 3
  local q="bench-$s-$r-$b" load out
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  local w0 rss0
  w0=$(writes_of "$b"); rss0=$(rss_mib "$b")
  if [ "$s" = S10 ]; then
    perf --uri "${url[$b]}" --idle "$idle_count" -z 5 2>"$work/idle.log" &
    local idle_pid=$! rss1=
    # RabbitMQ takes minutes to accept 10,000 connections.
    for _ in $(seq 1200); do
      grep -q "idle connections open" "$work/idle.log" 2>/dev/null && break
      kill -0 $idle_pid 2>/dev/null || break
      sleep 0.5
    done
    grep -q "idle connections open" "$work/idle.log" || { cat "$work/idle.log" >&2; exit 1; }
    sleep 2; rss1=$(rss_mib "$b")
    wait $idle_pid
    out="{\"rss_before_mib\": $rss0, \"rss_mib\": $rss1, \"connections\": $idle_count}"
  elif [ "$s" = S11 ]; then
    out=$(perf --uri "${url[$b]}" -u "$q" --publish-only --persistent --durable -c100 -x1 -s1024 -C "$deep_count" --json | tail -1)
    out=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d.update(rss_before_mib=int(sys.argv[2]), rss_mib=int(sys.argv[3])); print(json.dumps(d))' "$out" "$rss0" "$(rss_mib "$b")")
    perf --uri "${url[$b]}" -u "$q" --consume-only -y1 -q1000 -a100 -C "$deep_count" >/dev/null 2>&1
  elif [ "$s" = S7 ]; then
    local pub con
    pub=$(perf --uri "${url[$b]}" -u "$q" --publish-only -x1 -s16 -C "$s7_count" --json | tail -1)
    con=$(perf --uri "${url[$b]}" -u "$q" --consume-only -y1 -q1000 -a100 -C "$s7_count" --json | tail -1)
    out=$(python3 -c 'import json,sys; p=json.loads(sys.argv[1]); c=json.loads(sys.argv[2]); p["consume_rate"]=c["consume_rate"]; p["consumed"]=c["consumed"]; p["latency_ms"]=c.get("latency_ms"); print(json.dumps(p))' "$pub" "$con")
  else
    out=$(perf --uri "${url[$b]}" -u "$q" -z "$secs" "$@" --json | tail -1)
  fi
  python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d.update(broker=sys.argv[2],scenario=sys.argv[3],round=int(sys.argv[4]),load=sys.argv[5],broker_writes=int(sys.argv[6]),client=sys.argv[7]); print(json.dumps(d))' \
    "$out" "$b" "$s" "$r" "$load" "$(( $(writes_of "$b") - w0 ))" "$client" >>"$results"
  echo "$s round $r $b: $(tail -1 "$results")" >&2
}

for entry in "${scenarios[@]}"; do
  IFS='|' read -r name flags _ <<<"$entry"
  if [ -n "${BENCH_ONLY:-}" ] && [[ " $BENCH_ONLY " != *" $name "* ]]; then continue; fi
  [ -n "$render" ] && continue
  for r in $(seq "$rounds"); do
    for b in "${brokers[@]}"; do
      # shellcheck disable=SC2086
      run "$b" "$name" "$r" $flags
    done
  done
done

[ $smoke = 1 ] && { echo "smoke run done: every scenario ran against warren" >&2; exit 0; }

python3 - "$results" "$here/RESULTS.md" "$secs" "$rounds" "$client" "${scenarios[@]}" <<'PY'
import json, statistics, sys, subprocess, datetime, os
res, out, secs, rounds, client = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
scen = [s.split("|") for s in sys.argv[6:]]
rows = [json.loads(l) for l in open(res)]
def med(s, b, f):
    v = [f(r) for r in rows if r["scenario"] == s and r["broker"] == b and f(r) is not None]
    return statistics.median(v) if v else None
def fmt(x, unit=""):
    return "—" if x is None else (f"{x:,.0f}{unit}" if x >= 100 else f"{x:.3f}{unit}")
lines = ["# Benchmark: warren against RabbitMQ", "",
  f"Made by `bash bench/compare.sh` on {datetime.date.today()}: {os.cpu_count()} cores, "
  f"{secs} s per run, {rounds} rounds alternating warren and RabbitMQ, medians. Same load "
  f"generator (`warren-perf --client {client}`) for both. RabbitMQ is Debian's `rabbitmq-server` "
  f"({subprocess.run(['dpkg-query','-W','-f=${Version}','rabbitmq-server'],capture_output=True,text=True).stdout or '?'}).", "",
  "| scenario | | publish/s warren | publish/s RabbitMQ | consume/s warren | consume/s RabbitMQ | consume ratio | latency p50 / p99 ms warren | latency p50 / p99 ms RabbitMQ | confirm p99 ms warren | confirm p99 ms RabbitMQ | deliveries per broker write() warren / RabbitMQ | load before (1/5/15 min) |",
  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
mem = []
for name, flags, what in scen:
    if name in ("S10", "S11"):
        mem.append((name, what))
        continue
    g = lambda b, f: med(name, b, f)
    # Without confirms, a publish-only run's "taken" rate (until the broker's close-ok) is
    # what the broker really took in.
    rate = lambda r: r.get("taken_rate") or r.get("publish_rate")
    pw, pr = g("warren", rate), g("rabbitmq", rate)
    cw, cr = g("warren", lambda r: r.get("consume_rate")), g("rabbitmq", lambda r: r.get("consume_rate"))
    lat = lambda b, p: g(b, lambda r: (r.get("latency_ms") or {}).get(p))
    clat = lambda b: g(b, lambda r: (r.get("confirm_latency_ms") or {}).get("p99"))
    ratio = f"{cw/cr:.1f}x" if cw and cr else "—"
    loads = ", ".join(r["load"] for r in rows if r["scenario"] == name)
    # Every write(2)-family call of the broker's process: socket writes, and disk writes
    # in the persistent scenarios.
    per = lambda b: g(b, lambda r: r["consumed"] / r["broker_writes"] if r.get("broker_writes") and r.get("consumed") else None)
    pwr = lambda b: "—" if per(b) is None else f"{per(b):.1f}"
    lines.append(f"| {name} | {what} | {fmt(pw)} | {fmt(pr)} | {fmt(cw)} | {fmt(cr)} | {ratio} | "
                 f"{fmt(lat('warren','p50'))} / {fmt(lat('warren','p99'))} | {fmt(lat('rabbitmq','p50'))} / {fmt(lat('rabbitmq','p99'))} | "
                 f"{fmt(clat('warren'))} | {fmt(clat('rabbitmq'))} | {pwr('warren')} / {pwr('rabbitmq')} | {loads} |")
if mem:
    lines += ["", "| memory | | RSS MiB warren (before / with) | RSS MiB RabbitMQ (before / with) |", "|---|---|---|---|"]
    for name, what in mem:
        cell = lambda b: (f"{med(name, b, lambda r: r.get('rss_before_mib')):.0f} / {med(name, b, lambda r: r.get('rss_mib')):.0f}"
                          if med(name, b, lambda r: r.get('rss_mib')) is not None else "—")
        lines.append(f"| {name} | {what} | {cell('warren')} | {cell('rabbitmq')} |")
lines += ["", f"Flags per scenario (`warren-perf --client {client} ... -z SECONDS`):", ""]
lines += [f"- {n}: `{f}`" for n, f, _ in scen]
lines += ["", "Raw results, one JSON line per run:", "", "```"] + [json.dumps(r) for r in rows] + ["```", ""]
open(out, "w").write("\n".join(lines))
print("\n".join(lines[:len(scen) + 10]))
PY
