#!/usr/bin/env bash
# Issue 6 on a lent GPU, in one device command of under 10 minutes: four Dpt.Console runs share the GPU, each capped
# at LIMIT seconds (the full preset, the best CPU stage 1: contrastive-propagation with the head's histograms):
#   l4s1, l1s1: the whole method (stages 1-3) at 4 and 1 labels per class, seed 1, 100 generated images per class,
#               filtered by stage 1, weight 0.25;
#   s2, s3:     stage 1 alone at 1 and 4 labels per class, seeds 2 and 3.
# Prepare here: bash tests/Microsoft.ML.Dpt.Benchmarks/pack-gpu.sh --with-data
# Then: run with carry [".gpu"] and command "bash tests/Microsoft.ML.Dpt.Benchmarks/issue6-gpu.sh", timeout_s 590.
# Logs and results (model files left out) come back in $OUT: gpu.txt, the four logs, exits.txt, runs.tar.gz.
set -u
LIMIT=${LIMIT:-515}
OUT=${OUT:-out/issue6-gpu}; mkdir -p "$OUT"
work=/tmp/issue6-runs; rm -rf "$work"; mkdir -p "$work"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader > "$OUT/gpu.txt" 2>&1
common="--preset full --device cuda --data .gpu/fashion-mnist --algorithm contrastive-propagation --head-gradient-weight 1"
generated="--generated-per-class 100 --generated-weight 0.25 --filter-generated"
run() {
  local name=$1; shift
  ( time timeout "$LIMIT" bash .gpu/run.sh Dpt.Console "$@" --output "$work/$name" --checkpoints "$work/checkpoints-$name" ) > "$work/$name.log" 2>&1
  echo "$name exit $?" >> "$work/exits.txt"
}
run l4s1 $common $generated --labels-per-class 4 --seed 1 &
run l1s1 $common $generated --labels-per-class 1 --seed 1 &
run s2 $common --stages 1 --labels-per-class 1,4 --seed 2 &
run s3 $common --stages 1 --labels-per-class 1,4 --seed 3 &
wait
cp "$work"/*.log "$work/exits.txt" "$OUT/"
tar -C "$work" --exclude='*.dpt' --exclude='checkpoints-*' -czf "$OUT/runs.tar.gz" .
grep -h "accuracy\|FD\|stage 3" "$work"/*.log | tail -40
