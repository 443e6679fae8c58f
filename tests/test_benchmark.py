"""bench/benchmark.py's options and header lines (the benchmark itself is
run by hand: speed is never asserted in a test).

--quick stands for a short set of options, each of which an option given
beside it overrides; the header's helper processes run against this
checkout's package layout and keep TensorFlow's start-up chatter to
themselves.
"""
import os
import sys

from conftest import REPO

sys.path.insert(0, os.path.join(REPO, 'bench'))
import benchmark  # noqa: E402  (bench/ is not a package)
import report  # noqa: E402


def test_quick_stands_for_short_options_that_given_ones_override():
  args = benchmark.parse_args(['--quick'])
  assert (args.reps, args.steps, args.warmup_steps, args.train_records,
          args.only) == (1, 120, 40, 10000, ['train', 'memory', 'eval'])
  args = benchmark.parse_args(['--quick', '--steps', '50', '--only=train'])
  assert (args.reps, args.steps, args.only) == (1, 50, ['train'])
  args = benchmark.parse_args([])
  assert (args.reps, args.steps, args.train_records) == (3, 400, 50000)


def test_header_helpers_print_nothing_of_their_own(capfd):
  args = benchmark.parse_args(['--repo', REPO])
  runtime = report.runtime_description(args)
  threads = report.thread_settings(args)
  assert runtime.startswith('TensorFlow ') and ', Python ' in runtime
  assert threads.startswith('intra_op 0, inter_op 0, input threads ')
  out, err = capfd.readouterr()
  assert out == '' and err == ''
