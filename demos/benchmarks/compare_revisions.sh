#!/usr/bin/env bash
# Old revision against this checkout: mlp_speed and rnn_speed, each run in its own process,
# alternating old/new for ROUNDS rounds, so both see the same machine. Compare the ratios
# (rnnbp/NumPy, fused/GEMM) each run prints; they cancel most of the machine's drift.
#   bash demos/benchmarks/compare_revisions.sh REVISION [ROUNDS]
set -euo pipefail
rev=${1:?usage: compare_revisions.sh REVISION [ROUNDS]}; rounds=${2:-3}
new=$(cd "$(dirname "$0")/../.." && pwd)
old=$(mktemp -d)
trap 'git -C "$new" worktree remove --force "$old"' EXIT
git -C "$new" worktree add -q --detach "$old" "$rev"
cd "$(mktemp -d)"  # neither tree on sys.path but through PYTHONPATH
for i in $(seq 1 "$rounds"); do
  for which in old new; do
    tree=$([ "$which" = old ] && echo "$old" || echo "$new")
    echo "== round $i: $which"
    PYTHONPATH=$tree python3 "$tree/demos/benchmarks/mlp_speed.py" --rounds 5 | grep ratio
    PYTHONPATH=$tree python3 "$tree/demos/benchmarks/rnn_speed.py" --sizes small medium --cells lstm gru \
      --no-composed --no-torch --rounds 3 | grep -E "^(lstm|gru)"
    sleep 2
  done
done
