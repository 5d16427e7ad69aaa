#!/bin/bash
# bench/peer_restore.sh [--threads] [N] [DEST] — restore everything the peer bench's Strongroom
# installation holds, N times (default 5), into DEST (default /var/tmp/bench-restore/t, emptied
# and synced before each run), and print each run's wall seconds and each daemon's user/system
# CPU seconds. With --threads, also the CPU seconds of every thread of every daemon that used
# more than 0.02 s: which thread is the critical path (docs/performance.md, session 6). Threads
# are read from /proc every 0.2 s; a thread that ends between two reads loses its last 0.2 s. A
# daemon's main thread has its pid as id.
#
# Run from the project root after a peer-bench run (or bench/peer_profile.sh) made the
# installation under /var/tmp/bench-work/strongroom/qs; the daemons are started if they are not
# running (stop them first to measure new code). Median of the runs in docs/performance.md.
# On ext4 without a journal, file creation right after a large tree was deleted is slowed by the
# kernel for every tool (see "Restores and the file system" in docs/performance.md): measure
# restores on a journaled file system.
set -euo pipefail
THREADS=false
if [ "${1:-}" = --threads ]; then
  THREADS=true
  shift
fi
N=${1:-5}
DEST=${2:-/var/tmp/bench-restore/t}
ROOT=$(pwd)
export SR_VENV=${SR_VENV:-$ROOT/.venv}
B=$(cd "$ROOT/../shared/peer-bench" && pwd)
Q=/var/tmp/bench-work/strongroom/qs
cpu() {
  for f in "$Q"/run/*.pid; do
    awk -v n="$(basename "$f" .pid)" '{print n, $14, $15}' "/proc/$(cat "$f")/stat"
  done
}
threads() {
  for f in "$Q"/run/*.pid; do
    pid=$(cat "$f")
    for t in /proc/"$pid"/task/*; do
      # fields after the ")" of the command: 12 and 13 are utime and stime
      sed 's/.*) //' "$t/stat" 2>/dev/null \
        | awk -v n="$(basename "$f" .pid)" -v t="$(basename "$t")" '{print n "/" t, $12, $13}' || true
    done
  done
}
"$B/strongroom-ctl.sh" start
for _ in $(seq "$N"); do
  rm -rf "$DEST" && mkdir -p "$DEST" && sync
  cpu > "$DEST.cpu0"
  if $THREADS; then
    threads > "$DEST.t0"
    (while true; do threads; sleep 0.2; done) > "$DEST.poll" &
    poll=$!
  fi
  start=$(date +%s.%N)
  "$B/strongroom-ctl.sh" restore "$DEST" > /dev/null
  end=$(date +%s.%N)
  cpu > "$DEST.cpu1"
  printf 'wall %.2f s ' "$(echo "$end - $start" | bc)"
  paste "$DEST.cpu0" "$DEST.cpu1" \
    | awk '{printf " %s user %.2f sys %.2f ", substr($1, 12), ($5 - $2) / 100, ($6 - $3) / 100}'
  echo
  if $THREADS; then
    kill "$poll"
    wait "$poll" 2>/dev/null || true
    threads >> "$DEST.poll"
    awk 'NR == FNR { u0[$1] = $2; s0[$1] = $3; next }
         { u[$1] = $2; s[$1] = $3 }
         END { for (k in u) { du = (u[k] - u0[k]) / 100; ds = (s[k] - s0[k]) / 100
                 if (du + ds > 0.02) printf "  %-28s user %5.2f  system %5.2f\n", k, du, ds } }' \
      "$DEST.t0" "$DEST.poll" | sort
  fi
done
rm -rf "$DEST" "$DEST.cpu0" "$DEST.cpu1" "$DEST.t0" "$DEST.poll"
