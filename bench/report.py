"""The benchmark's report: medians and spreads, the machine and runtime
described, and the table benchmark.py prints."""
from __future__ import division
from __future__ import print_function

import os
import platform
import re
import shlex
import subprocess
import sys

import library  # bench/, next to this file

BENCH = os.path.dirname(os.path.abspath(__file__))


def median(values):
  values = sorted(v for v in values if v is not None)
  if not values:
    return None
  mid = len(values) // 2
  return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def spread(values, fmt):
  """'median [min-max]' of the figures, in fmt."""
  values = [v for v in values if v is not None]
  if not values:
    return '-'
  if len(values) == 1:
    return fmt % values[0]
  return (fmt + ' [' + fmt + '-' + fmt + ']') % (median(values), min(values),
                                                 max(values))


def cpu_description():
  """The CPU model, and whether it has AVX-512, bfloat16 and AMX.

  precision.cpu_info reads /proc/cpuinfo (or $CIFAR10_CPUINFO), as the
  scripts do when they decide whether bfloat16 is emulated.
  """
  precision = library.module('precision')
  model, cpu_flags = precision.cpu_info()

  def has(*names):
    found = [n for n in names if n in cpu_flags]
    return 'yes (%s)' % ', '.join(found) if found else 'no'

  return '%s; AVX-512: %s, bfloat16: %s, AMX: %s' % (
      model, has('avx512f'), has('avx512_bf16', 'amx_bf16'),
      has('amx_tile', 'amx_bf16', 'amx_int8'))


def _quiet_output(code):
  """The stdout of `python -c code`; its stderr (TensorFlow's start-up log
  lines and deprecation warnings) is shown only when it fails."""
  proc = subprocess.run([sys.executable, '-c', code], stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, universal_newlines=True)
  if proc.returncode:
    sys.stderr.write(proc.stderr)
    raise SystemExit('benchmark.py: error: a helper process failed (exit %d)'
                     % proc.returncode)
  return proc.stdout


def onednn_isa():
  """The ISA oneDNN dispatches to in a fresh process (ONEDNN_VERBOSE)."""
  code = ('import os; os.environ["TF_CPP_MIN_LOG_LEVEL"]="3"\n'
          'import tensorflow.compat.v1 as tf\n'
          'tf.disable_eager_execution()\n'
          'with tf.Session() as s:\n'
          '  s.run(tf.nn.conv2d(tf.ones([1, 8, 8, 8]), tf.ones([3, 3, 8, 8]),'
          ' [1, 1, 1, 1], "SAME"))\n')
  env = dict(os.environ, ONEDNN_VERBOSE='1', DNNL_VERBOSE='1')
  out = subprocess.run([sys.executable, '-c', code], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True).stdout
  isa = re.search(r'isa:(.*)', out)
  if isa:
    return isa.group(1).strip()
  return 'none reported: this TensorFlow build runs no oneDNN kernels'


def runtime_description(args):
  code = ('import sys; sys.argv=["x"]; sys.path.insert(0, %r); import cifar10; '
          'import tensorflow as t; print(t.__version__)' % args.repo)
  version = _quiet_output(code).strip()
  return 'TensorFlow %s, Python %s' % (version.splitlines()[-1],
                                       platform.python_version())


def thread_settings(args):
  code = ('import sys; sys.argv=["x"]; sys.path.insert(0, %r)\n'
          'from absl import flags\n'
          'sys.path.append(%r); import library\n'
          'cli, cifar10_input, config = [library.module(m) for m in '
          '("cli", "cifar10_input", "config")]\n'
          'cli.define_flags("data", "download", "split", "batch", "model", '
          '"training", "session")\n'
          'flags.FLAGS(["x"] + %r)\n'
          'c = cli.session_config(config.from_flags(flags.FLAGS))\n'
          'print("intra_op %%d, inter_op %%d, input threads %%d" %% ('
          'c.intra_op_parallelism_threads, c.inter_op_parallelism_threads, '
          'cifar10_input.NUM_PREPROCESS_THREADS))'
          % (args.repo, BENCH, shlex.split(args.script_args)))
  out = _quiet_output(code)
  return out.strip().splitlines()[-1] + ' (0 = TensorFlow decides)'


ROW_TITLES = [
    ('train', 'cifar10_train.py'),
    ('multi1', 'cifar10_multi_gpu_train.py, 1 tower (cpu)'),
    ('multi2', 'cifar10_multi_gpu_train.py, 2 towers (cpu)'),
    ('memory_default', 'same graph fed from memory, default session (baseline)'),
    ('memory_train', 'same graph fed from memory, training session settings'),
    ('eval', 'cifar10_eval.py Evaluator, 10,000 images (images/sec)'),
]


def print_table(args, results):
  precisions = args.precisions
  base = [r['rate']
          for r in results.get(('memory_default', precisions[0]), [])]
  print()
  print('| %s | examples/sec, median of logged after step %d [min-max] '
        '| vs baseline | average examples/sec, start to finish '
        '| start to first step (s) '
        '| peak memory (MB) | CPU ms per example |'
        % ('row' + args.label, args.warmup_steps))
  print('|---|---|---|---|---|---|---|')
  for (key, title), prec in [(row, prec) for row in ROW_TITLES
                             for prec in precisions]:
    runs = results.get((key, prec))
    if not runs:
      continue
    rates = [r['rate'] for r in runs]
    ratio = ('%.2fx' % (median(rates) / median(base))
             if base and key != 'eval' else '-')
    if key == 'memory_default' and prec != precisions[0]:
      title = title.replace(' (baseline)', '')
    if precisions != ['float32']:
      title += ', ' + prec
    if args.label:
      title += ' ' + args.label
    print('| %s | %s | %s | %s | %s | %s | %s |' % (
        title, spread(rates, '%.0f'), ratio,
        spread([r['average'] for r in runs], '%.0f'),
        spread([r.get('first_step') for r in runs], '%.1f'),
        spread([r['peak_mb'] for r in runs], '%.0f'),
        spread([r.get('cpu_ms') for r in runs], '%.2f')))
  print()
  print('CPU ms per example: the process\'s user + system CPU time over the '
        'examples it trained, start-up included; it varies less than wall '
        'time on a shared machine.')
  if any(key == 'eval' for key, _ in results):
    print('eval: "examples/sec" is the second evaluation in the process; '
          '"average" is the first (with kernel warm-up).')
