#!/bin/bash
# bench/peer_profile.sh JOB OUT [--native] — one job of the peer bench's Strongroom installation
# with py-spy on every daemon: where the time goes per daemon (docs/performance.md, session 4).
#
#   JOB  full-large       a fresh installation of the large set, then its Full (profiled)
#        restore          a restore of everything the installation holds (after full-large)
#        incr-small       a fresh installation of the small set, its Full, then a no-change
#                         Incremental (profiled)
#   OUT  a directory for py-spy's collapsed stacks (OUT/strongroom-{dir,fd,sd}.txt) and the CPU
#        seconds of each daemon before and after the job (OUT/cpu0, OUT/cpu1)
#
# Prints the job's wall time and, per daemon, the CPU ticks (1/100 s) before and after, then the
# functions with the most own samples per daemon and the share of each thread. Run from the
# project root with the project in ./.venv and py-spy installed there (pip install py-spy); the
# data sets come from ../shared/peer-bench/datasets.sh.
set -euo pipefail
JOB=${1:?usage: bench/peer_profile.sh full-large|restore|incr-small OUT [--native]}
OUT=${2:?usage: bench/peer_profile.sh full-large|restore|incr-small OUT [--native]}
NATIVE=${3:-}
ROOT=$(pwd)
export PATH=$ROOT/.venv/bin:$PATH SR_VENV=$ROOT/.venv
B=$(cd "$ROOT/../shared/peer-bench" && pwd)
DATA=${BENCH_DATA:-/var/tmp/bench-data}
Q=/var/tmp/bench-work/strongroom/qs
DEST=/var/tmp/bench-restore/profile
mkdir -p "$OUT"

case $JOB in
  full-large)
    "$B/strongroom-ctl.sh" reset "$DATA/large"
    "$B/strongroom-ctl.sh" start
    find "$DATA/large" -type f -print0 | xargs -0 cat > /dev/null
    run=("$B/strongroom-ctl.sh" backup Full) ;;
  restore)
    rm -rf "$DEST" && mkdir -p "$DEST" && sync
    "$B/strongroom-ctl.sh" start
    run=("$B/strongroom-ctl.sh" restore "$DEST") ;;
  incr-small)
    "$B/strongroom-ctl.sh" reset "$DATA/small"
    "$B/strongroom-ctl.sh" start
    "$B/strongroom-ctl.sh" backup Full > /dev/null
    run=("$B/strongroom-ctl.sh" backup Incremental) ;;
  *) echo "unknown job $JOB" >&2; exit 2 ;;
esac

cpu() { for f in "$Q"/run/*.pid; do awk -v n="$(basename "$f" .pid)" '{print n, $14 + $15, $14, $15}' "/proc/$(cat "$f")/stat"; done; }
mode=(--nonblocking)
[ "$NATIVE" = --native ] && mode=(--native)
for f in "$Q"/run/*.pid; do
  py-spy record "${mode[@]}" --threads -r 100 -f raw -o "$OUT/$(basename "$f" .pid).txt" \
    -p "$(cat "$f")" > /dev/null 2>&1 &
done
sleep 1
cpu > "$OUT/cpu0"
start=$(date +%s.%N)
"${run[@]}" > /dev/null
end=$(date +%s.%N)
cpu > "$OUT/cpu1"
sleep 1
pkill -INT -f "py-spy record" || true
sleep 2
"$B/strongroom-ctl.sh" stop
[ "$JOB" = restore ] && rm -rf "$DEST"
python3 - "$OUT" "$start" "$end" <<'EOF'
import collections, re, sys
out, start, end = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
print(f"{end - start:.2f} s wall")
before = {l.split()[0]: l.split()[1:] for l in open(f"{out}/cpu0")}
for line in open(f"{out}/cpu1"):
    name, total, user, system = line.split()
    print(f"{name}: {(int(total) - int(before[name][0])) / 100:.2f} CPU-s "
          f"(user {(int(user) - int(before[name][1])) / 100:.2f}, "
          f"system {(int(system) - int(before[name][2])) / 100:.2f})")
for daemon in ("dir", "fd", "sd"):
    own, threads, total = collections.Counter(), collections.Counter(), 0
    try:
        lines = open(f"{out}/strongroom-{daemon}.txt").readlines()
    except OSError:
        continue
    for line in lines:
        stack, _, n = line.rstrip().rpartition(" ")
        frames = stack.split(";")
        total += int(n)
        threads[frames[0]] += int(n)
        own[re.sub(r":\d+\)$", ")", frames[-1])] += int(n)
    print(f"== strongroom-{daemon}: {total} samples")
    for name, n in own.most_common(12):
        print(f"{100 * n / total:5.1f}% {name}")
    for name, n in threads.most_common(4):
        print(f"      thread {100 * n / total:5.1f}% {name}")
EOF
