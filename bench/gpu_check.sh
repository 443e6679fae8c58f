#!/usr/bin/env bash
# The GPU path in one command, one table, in under 10 minutes on a GPU:
#
#     bash bench/gpu_check.sh [DATA_DIR] [OUT_DIR]     # /tmp/cifar10_data, /tmp/gpu_check
#     bash bench/gpu_check.sh --tiny DATA_DIR OUT_DIR  # a few steps (the test's)
#
# Rows: the whitened network's recipe on the CPU (a few steps, float32);
# then, where TensorFlow finds a GPU, the recipe in float32 and in float16
# (all its epochs, then precision @ 1 with --tta=2), and the multi-GPU
# trainer (the tutorial's network) with 1 tower and with every GPU. Without
# a GPU it says so after the CPU rows and exits 0. examples/sec is the
# median of the trainer's logged rates; seconds, launch to exit.
set -u
cd "$(dirname "$0")/.."
tiny=0
if [ "${1:-}" = "--tiny" ]; then tiny=1; shift; fi
data_dir=${1:-/tmp/cifar10_data}
out_dir=${2:-/tmp/gpu_check}
mkdir -p "$out_dir"
if [ $tiny = 1 ]; then batch=8; cpu_steps=3; gpu_epochs=1; tower_steps=3; queue=0.1
else batch=1024; cpu_steps=20; gpu_epochs=10; tower_steps=300; queue=0.1; fi

rows=()
# run NAME SCRIPT FLAGS...: trains into $out_dir/NAME, adds a table row.
run() {
  local name=$1 script=$2; shift 2
  local dir="$out_dir/${name// /_}" start end status rate precision=""
  rm -rf "$dir"
  start=$(date +%s.%N)
  python "$script" --data_dir "$data_dir" --train_dir "$dir" \
    --min_fraction_of_examples_in_queue=$queue --log_frequency=1 "$@" \
    > "$dir.log" 2>&1
  status=$?
  end=$(date +%s.%N)
  if [ $status != 0 ]; then
    echo "gpu_check: $name failed (exit $status); its log: $dir.log"
    tail -3 "$dir.log"
    rows+=("| $name | failed | | | |")
    return
  fi
  rate=$(python - "$dir.log" <<'EOF'
import re, statistics, sys
rates = [float(r) for r in re.findall(r'\((\d+\.\d) examples/sec', open(sys.argv[1]).read())]
print('%.1f' % statistics.median(rates[1:] or rates))
EOF
)
  steps=$(grep -o 'Done at step [0-9]*' "$dir.log" | grep -o '[0-9]*$')
  if [ "${EVAL:-0}" = 1 ]; then
    precision=$(python cifar10_eval.py --data_dir "$data_dir" --checkpoint_dir "$dir" \
      --eval_dir "$dir/eval" --model=whitened_cnn --run_once --tta=2 2>/dev/null \
      | grep -o 'precision @ 1 = [0-9.]*' | grep -o '[0-9.]*$')
  fi
  rows+=("| $name | $steps | $rate | $(python -c "print('%.0f' % ($end - $start))") | $precision |")
}

run "cpu float32" cifar10_train.py --model=whitened_cnn --batch_size=$batch \
  --max_steps=$cpu_steps --epochs=$gpu_epochs --precision=float32 \
  --intra_op_threads=0
gpus=$(python -c "
from cifar10lib.training import precision
print(precision.gpu_count())" 2>/dev/null || echo 0)
if [ "${gpus:-0}" -gt 0 ]; then
  EVAL=1 run "gpu float32" cifar10_train.py --model=whitened_cnn \
    --batch_size=$batch --epochs=$gpu_epochs --precision=float32
  EVAL=1 run "gpu float16" cifar10_train.py --model=whitened_cnn \
    --batch_size=$batch --epochs=$gpu_epochs --precision=float16
  run "multi-GPU trainer, 1 tower" cifar10_multi_gpu_train.py --num_gpus=1 \
    --max_steps=$tower_steps
  if [ "$gpus" -gt 1 ]; then
    run "multi-GPU trainer, $gpus towers" cifar10_multi_gpu_train.py \
      --num_gpus=$gpus --max_steps=$tower_steps
  fi
fi
echo
echo "| run | steps | examples/sec | seconds | precision @ 1 (--tta=2) |"
echo "|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
if [ "${gpus:-0}" -gt 0 ]; then
  echo "$gpus GPU(s) found."
else
  echo "No GPU found: TensorFlow sees none on this machine; only the CPU rows ran."
fi
exit 0
