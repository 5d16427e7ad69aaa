#!/bin/bash
# bench/peer_restore.sh [N] [DEST] — restore everything the peer bench's Strongroom installation
# holds, N times (default 5), into DEST (default /var/tmp/bench-restore/t, emptied and synced
# before each run), and print each run's wall seconds and each daemon's user/system CPU seconds.
#
# Run from the project root after a peer-bench run (or bench/peer_profile.sh) made the
# installation under /var/tmp/bench-work/strongroom/qs; the daemons are started if they are not
# running (stop them first to measure new code). Median of the runs in docs/performance.md.
# On ext4 without a journal, file creation right after a large tree was deleted is slowed by the
# kernel for every tool (see "Restores and the file system" in docs/performance.md): measure
# restores on a journaled file system.
set -euo pipefail
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
"$B/strongroom-ctl.sh" start
for _ in $(seq "$N"); do
  rm -rf "$DEST" && mkdir -p "$DEST" && sync
  cpu > "$DEST.cpu0"
  start=$(date +%s.%N)
  "$B/strongroom-ctl.sh" restore "$DEST" > /dev/null
  end=$(date +%s.%N)
  cpu > "$DEST.cpu1"
  printf 'wall %.2f s ' "$(echo "$end - $start" | bc)"
  paste "$DEST.cpu0" "$DEST.cpu1" \
    | awk '{printf " %s user %.2f sys %.2f ", substr($1, 12), ($5 - $2) / 100, ($6 - $3) / 100}'
  echo
done
rm -rf "$DEST" "$DEST.cpu0" "$DEST.cpu1"
