"""bench/benchmark.py's options (bench/options.py) and header lines, and the
output of bench/peak_flops.py and bench/data_layout.py (the benchmarks
themselves are run by hand: speed is never asserted in a test).

--quick stands for a short set of options, each of which an option given
beside it overrides; the header's helper processes run against this
checkout's package layout and keep TensorFlow's start-up chatter to
themselves.
"""
import os
import re
import subprocess
import sys

from conftest import REPO

sys.path.insert(0, os.path.join(REPO, 'bench'))
import options  # noqa: E402  (bench/ is not a package)
import report  # noqa: E402


def test_quick_stands_for_short_options_that_given_ones_override():
  args = options.parse_args(['--quick'])
  assert (args.reps, args.steps, args.warmup_steps, args.train_records,
          args.only) == (1, 120, 40, 10000, ['train', 'memory', 'eval'])
  args = options.parse_args(['--quick', '--steps', '50', '--only=train'])
  assert (args.reps, args.steps, args.only) == (1, 50, ['train'])
  args = options.parse_args([])
  assert (args.reps, args.steps, args.train_records) == (3, 400, 50000)


def test_header_helpers_print_nothing_of_their_own(capfd):
  args = options.parse_args(['--repo', REPO])
  runtime = report.runtime_description(args)
  threads = report.thread_settings(args)
  assert runtime.startswith('TensorFlow ') and ', Python ' in runtime
  assert threads.startswith('intra_op 0, inter_op 0, input threads ')
  out, err = capfd.readouterr()
  assert out == '' and err == ''


def run_peak_flops(env=None):
  result = subprocess.run(
      [sys.executable, os.path.join(REPO, 'bench', 'peak_flops.py'),
       '--n', '64', '--seconds', '0.2'], stdout=subprocess.PIPE,
      stderr=subprocess.PIPE, universal_newlines=True, timeout=240,
      env=dict(os.environ, **(env or {})))
  assert result.returncode == 0, result.stderr
  lines = result.stdout.splitlines()
  assert lines[0].startswith('machine: '), lines
  assert re.match(r'^float32: \d+ GFLOP/s \(64x64 matrix products', lines[1])
  return lines


def test_peak_flops_prints_a_rate_per_precision():
  lines = run_peak_flops()
  # bfloat16 products: a rate, or a runtime that has none says so.
  assert re.match(r'^bfloat16: (\d+ GFLOP/s|not available on this runtime)',
                  lines[2]), lines


def test_peak_flops_survives_an_isa_without_bfloat16_kernels():
  # Limited to AVX2, oneDNN aborts the process on a bfloat16 product
  # instead of raising; the float32 line must still come, then a reason.
  lines = run_peak_flops({'ONEDNN_MAX_CPU_ISA': 'AVX2'})
  assert re.match(r'^bfloat16: (\d+ GFLOP/s \(64x64|not available on this '
                  r'(runtime|ISA) \(.+\)$)', lines[2]), lines


def test_data_layout_prints_a_rate_or_a_reason_per_layout():
  result = subprocess.run(
      [sys.executable, os.path.join(REPO, 'bench', 'data_layout.py'),
       '--batch_size', '4', '--widths', '4,8,8', '--steps', '2',
       '--precision', 'float32'], stdout=subprocess.PIPE,
      stderr=subprocess.PIPE, universal_newlines=True, timeout=240)
  assert result.returncode == 0, result.stderr
  lines = result.stdout.splitlines()
  assert lines[0].startswith('machine: ') and 'widths 4,8,8' in lines[0]
  assert re.match(r'^NHWC: \d+\.\d examples/sec \(median of 2 steps\)$',
                  lines[1]), lines
  # NCHW: a rate, or a runtime without NCHW kernels on CPU says so.
  assert re.match(r'^NCHW: (\d+\.\d examples/sec|cannot run on this '
                  r'runtime \(.+\))', lines[2]), lines


# The tutorial's forward multiply-adds per 24x24 crop, from its layer sizes:
# conv1 5x5x3->64 at 24x24, conv2 5x5x64->64 at 12x12, local3 2304->384,
# local4 384->192, softmax 192->10.
TUTORIAL_FORWARD_MACS = (24 * 24 * 5 * 5 * 3 * 64 + 12 * 12 * 5 * 5 * 64 * 64
                         + 6 * 6 * 64 * 384 + 384 * 192 + 192 * 10)


def test_network_speed_from_the_training_pipeline(readonly_data_dir):
  batch = 16
  result = subprocess.run(
      [sys.executable, os.path.join(REPO, 'bench', 'network_speed.py'),
       '--models', 'tutorial,whitened_cnn', '--batch_size', str(batch),
       '--steps', '3', '--warmup_steps', '1', '--peak_seconds', '0.1',
       '--input', 'pipeline', '--data_dir', readonly_data_dir],
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
      timeout=400)
  assert result.returncode == 0, result.stderr
  out = result.stdout
  assert 'input: the training pipeline on %s\n' % readonly_data_dir in out
  rows = re.findall(r'^\| (\w+) \| (\d+) \| [\d.]+ \| ([\d.]+) \| [\d.]+ \| '
                    r'\d+ % \| [\d.]+ \|$', out, re.M)
  assert [(name, int(b)) for name, b, _ in rows] == [
      ('tutorial', batch), ('whitened_cnn', batch)], out
  assert float(rows[0][2]) == round(6 * TUTORIAL_FORWARD_MACS / 1e6, 1)
  # A dequeue leaves at least min_after_dequeue (0.4 and 0.1 of the 300
  # training records) and the queue holds at most that plus 3 batches.
  for name, least in (('tutorial', 120), ('whitened_cnn', 30)):
    sizes = re.search(r'^%s: examples in the shuffling queue before each '
                      r'timed step: ([\d ]+) \(min \d+\)$' % name, out, re.M)
    assert sizes, out
    counts = [int(n) for n in sizes.group(1).split()]
    assert len(counts) == 3 and all(
        least <= n <= least + 3 * batch for n in counts), counts


def test_network_speed_says_in_one_line_what_it_cannot_read(tmp_path):
  missing = str(tmp_path / 'no_data')
  result = subprocess.run(
      [sys.executable, os.path.join(REPO, 'bench', 'network_speed.py'),
       '--models', 'tutorial', '--steps', '1', '--peak_seconds', '0.1',
       '--input', 'pipeline', '--data_dir', missing],
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
      timeout=240)
  assert result.returncode == 1
  assert 'Traceback' not in result.stderr
  assert result.stderr.splitlines()[-1] == (
      'network_speed.py: error: %s/cifar-10-batches-bin/data_batch_1.bin: '
      'file not found' % missing), result.stderr
  assert not os.path.exists(missing)
