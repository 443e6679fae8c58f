"""Measures training and evaluation speed on this machine and this runtime.

    python bench/benchmark.py                  # the full table, about 10 minutes
    python bench/benchmark.py --quick          # a rough table in 2-3 minutes
    python bench/benchmark.py --reps 1 --steps 200 --only train,memory

--quick is --reps 1 --steps 120 --warmup_steps 40 --train_records 10000
--only train,memory,eval (any of those given as well wins): one repetition,
good for seeing that everything runs and for rough figures, not for
comparing close ones.

It writes synthetic data in the real format of --dataset (CIFAR-10's binary
records by default, 50,000 training and 10,000 test; MNIST's IDX files,
60,000 and 10,000, with --dataset=mnist) into a temporary directory, runs the
repository's scripts as subprocesses, as a user would, and prints one table:

  * cifar10_train.py, and cifar10_multi_gpu_train.py with 1 and 2 towers
    (--tower_device cpu): the median of the logged examples/sec after the
    warm-up steps, the average over the whole run (examples / wall time from
    launch to exit), the time from launch to the end of the first step, and
    the process's peak resident memory;
  * the same training graph fed from memory (a batch held in variables, no
    input pipeline, a plain session loop): with TensorFlow's default session
    settings (the compute-ceiling baseline every other row is divided by),
    and with the training scripts' session settings (the difference to the
    cifar10_train.py row is what the input pipeline costs);
  * evaluation: cifar10_eval.py's Evaluator over exactly 10,000 test images
    from a checkpoint the training rows wrote.

With --precision=float32,bfloat16 every row runs in each, side by side (the
baseline is the first's); the header says whether the CPU has AVX-512,
bfloat16 and AMX instructions, which decide whether bfloat16 can pay.

Every figure is the median of --reps repetitions, with their minimum and
maximum; the rows run in turn within each repetition, so that a slow spell
of a shared machine falls on all of them alike. Nothing here is a test.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import library  # bench/, next to this file
import options
import report
import synthetic_data
import workers
from report import median

LOG_LINE = re.compile(r'step (\d+), loss = \S+ \(([\d.]+) examples/sec')
EVAL_LINE = re.compile(r'eval (\d+) images in ([\d.]+) s')


# --- running one measured process ---------------------------------------------

class Run(object):
  """One subprocess: its output lines with arrival times, and its peak memory."""

  def __init__(self, cmd, cwd):
    self.cmd = cmd
    self.lines = []  # (seconds since launch, line)
    start = time.time()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, universal_newlines=True)
    reader = threading.Thread(target=self._read, args=(proc.stdout, start))
    reader.start()
    # wait4 gives this child's own peak resident set size, in KiB on Linux.
    _, status, usage = os.wait4(proc.pid, 0)
    self.wall = time.time() - start
    reader.join()
    proc.returncode = os.waitstatus_to_exitcode(status) if hasattr(
        os, 'waitstatus_to_exitcode') else (status >> 8)
    self.returncode = proc.returncode
    self.peak_mb = usage.ru_maxrss / 1024.0
    self.cpu = usage.ru_utime + usage.ru_stime
    if self.returncode:
      sys.stderr.write('command failed (exit %d): %s\n%s\n' % (
          self.returncode, ' '.join(cmd),
          '\n'.join(l for _, l in self.lines[-20:])))
      raise SystemExit(1)

  def _read(self, stream, start):
    for line in stream:
      self.lines.append((time.time() - start, line.rstrip('\n')))


def logged_rates(run, warmup_steps):
  """The examples/sec figures logged after warmup_steps."""
  rates = []
  for _, line in run.lines:
    match = LOG_LINE.search(line)
    if match and int(match.group(1)) > warmup_steps:
      rates.append(float(match.group(2)))
  return rates


def first_step_seconds(train_dir, launch_wall_time):
  """Seconds from launch to the end of the first step, or None.

  The training session's summary hook writes its first summaries right after
  the first step, so the wall time of that event marks the step's end.
  """
  import glob
  # Only here: the parent stays light otherwise.
  tf = library.module('cifar10').tf
  first = None
  for path in glob.glob(os.path.join(train_dir, 'events.out.tfevents.*')):
    for event in tf.train.summary_iterator(path):
      if event.HasField('summary') and event.step >= 1:
        first = event.wall_time if first is None else min(first,
                                                          event.wall_time)
        break
  return None if first is None else first - launch_wall_time


# --- the rows -----------------------------------------------------------------

def script_cmd(args, script, train_dir, extra=()):
  return ([sys.executable, os.path.join(args.repo, script),
           '--data_dir=%s' % args.data_dir, '--train_dir=%s' % train_dir,
           '--max_steps=%d' % args.steps, '--batch_size=%d' % args.batch_size,
           '--model=%s' % args.model, '--dataset=%s' % args.dataset]
          + list(extra) + shlex.split(args.script_args))


def worker_cmd(args, worker, extra=()):
  return ([sys.executable, os.path.abspath(__file__), '--worker', worker,
           '--repo', args.repo, '--batch_size=%d' % args.batch_size,
           '--steps=%d' % args.steps, '--model=%s' % args.model,
           '--dataset=%s' % args.dataset,
           '--train_records=%d' % args.train_records]
          + list(extra) + shlex.split(args.script_args))


def measure_training(args, name, script, extra, rep, prec):
  """Runs one training script from scratch in prec; returns its figures."""
  train_dir = os.path.join(args.work_dir, '%s-%s-%d' % (name, prec, rep))
  shutil.rmtree(train_dir, ignore_errors=True)  # a reused --work_dir
  launch = time.time()
  run = Run(script_cmd(args, script, train_dir,
                       list(extra) + ['--precision=' + prec]), args.repo)
  examples = args.steps * args.batch_size * (2 if name == 'multi2' else 1)
  rates = logged_rates(run, args.warmup_steps)
  return {'rate': median(rates), 'average': examples / run.wall,
          'first_step': first_step_seconds(train_dir, launch),
          'peak_mb': run.peak_mb, 'train_dir': train_dir,
          'cpu_ms': 1000.0 * run.cpu / examples}


def measure_memory(args, session, prec):
  run = Run(worker_cmd(args, 'memory', ['--session', session,
                                        '--precision=' + prec]), args.repo)
  examples = args.steps * args.batch_size
  return {'rate': median(logged_rates(run, args.warmup_steps)),
          'average': examples / run.wall, 'peak_mb': run.peak_mb,
          'cpu_ms': 1000.0 * run.cpu / examples}


def measure_eval(args, checkpoint_dir, prec):
  eval_dir = os.path.join(args.work_dir, 'eval')
  run = Run(worker_cmd(args, 'eval', [
      '--data_dir', args.data_dir, '--checkpoint_dir', checkpoint_dir,
      '--eval_dir', eval_dir, '--precision=' + prec]), args.repo)
  timings = [(int(m.group(1)), float(m.group(2)))
             for m in (EVAL_LINE.search(l) for _, l in run.lines) if m]
  if not timings or timings[-1][0] != options.EVAL_EXAMPLES:
    raise SystemExit('evaluation did not cover exactly %d images: %s'
                     % (options.EVAL_EXAMPLES, timings))
  # The second evaluation is the steady one (the first also warms kernels up).
  return {'rate': timings[-1][0] / timings[-1][1],
          'average': timings[0][0] / timings[0][1], 'peak_mb': run.peak_mb}


def main(argv):
  args = options.parse_args(argv, __doc__.split('\n\n')[0])
  args.repo = os.path.abspath(args.repo)
  # This process and its helpers import TensorFlow; its start-up chatter
  # (CUDA probing) would interleave with the table.
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  if args.worker == 'memory':
    return workers.run(workers.memory_worker, args)
  if args.worker == 'eval':
    args.data_dir, args.checkpoint_dir, args.eval_dir = _take(
        args.rest, ['--data_dir', '--checkpoint_dir', '--eval_dir'])
    return workers.run(workers.eval_worker, args, options.EVAL_EXAMPLES)
  chosen = args.only
  args.precisions = args.precision
  own_dir = args.work_dir is None
  args.work_dir = args.work_dir or tempfile.mkdtemp(prefix='cifar10-bench-')
  args.data_dir = os.path.join(args.work_dir, 'data')
  sys.path.insert(0, args.repo)
  datasets = library.module('datasets')
  ds = datasets.dataset(args.dataset)
  try:
    if not os.path.isdir(os.path.join(args.data_dir, ds.batches_dir)):
      synthetic_data.write_dataset(args.data_dir, ds, args.train_records,
                                   args.test_records)
    print('runtime: %s' % report.runtime_description(args))
    print('machine: %s; %d cores available to this process (of %d)' % (
        report.cpu_description(), len(os.sched_getaffinity(0)),
        os.cpu_count()))
    print('threads: %s' % report.thread_settings(args))
    print('run: %d repetitions x %d steps, batch %d, %s, %d training + %d '
          'test records, precision %s, script flags: %s' % (
              args.reps, args.steps, args.batch_size, args.dataset,
              args.train_records,
              args.test_records, ', '.join(args.precisions),
              args.script_args or '(none)'))
    results = {}
    for rep in range(args.reps):
      checkpoint_dir = None
      for key, script, extra in [
          ('train', 'cifar10_train.py', []),
          ('multi1', 'cifar10_multi_gpu_train.py',
           ['--num_gpus=1', '--tower_device=cpu']),
          ('multi2', 'cifar10_multi_gpu_train.py',
           ['--num_gpus=2', '--tower_device=cpu'])]:
        for prec in args.precisions if key in chosen else ():
          result = measure_training(args, key, script, extra, rep, prec)
          results.setdefault((key, prec), []).append(result)
          checkpoint_dir = checkpoint_dir or result['train_dir']
          print('  rep %d %s %s: %.0f examples/sec, %.2f CPU ms/example'
                % (rep + 1, key, prec, result['rate'], result['cpu_ms']),
                flush=True)
      for session in ('default', 'train') if 'memory' in chosen else ():
        for prec in args.precisions:
          result = measure_memory(args, session, prec)
          results.setdefault(('memory_' + session, prec), []).append(result)
          print('  rep %d memory (%s session) %s: %.0f examples/sec, %.2f '
                'CPU ms/example' % (rep + 1, session, prec, result['rate'],
                                    result['cpu_ms']), flush=True)
      if 'eval' in chosen:
        if checkpoint_dir is None:
          saved_steps, args.steps = args.steps, 20
          checkpoint_dir = measure_training(
              args, 'for-eval', 'cifar10_train.py', [], rep,
              'float32')['train_dir']
          args.steps = saved_steps
        # Checkpoints are float32 in every precision: one serves them all.
        for prec in args.precisions:
          result = measure_eval(args, checkpoint_dir, prec)
          results.setdefault(('eval', prec), []).append(result)
          print('  rep %d eval %s: %.0f images/sec'
                % (rep + 1, prec, result['rate']), flush=True)
    report.print_table(args, results)
  finally:
    if own_dir:
      shutil.rmtree(args.work_dir, ignore_errors=True)
  return 0


def _take(rest, names):
  """Values of --name VALUE pairs in rest, removing them from it."""
  values = []
  for name in names:
    i = rest.index(name)
    values.append(rest[i + 1])
    del rest[i:i + 2]
  return values


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
