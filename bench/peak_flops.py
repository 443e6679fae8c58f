"""The arithmetic this CPU reaches in TensorFlow: a large matrix product,
timed in float32 and bfloat16, as the yardstick for a trainer's FLOP/s.

    python bench/peak_flops.py            # 2048x2048 products, 5 s each

A matrix product of n x n matrices is 2 n^3 floating-point operations; the
best of several timed runs, after a warm-up, is the figure. It is what
oneDNN reaches on these cores, not the vendor's datasheet peak, which this
machine's cpuinfo does not give (no clock speed in a virtual machine).
Nothing here is a test.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import argparse
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

DTYPES = ('float32', 'bfloat16')


def gflops(dtype, n, seconds):
  """The best GFLOP/s of n x n products in dtype over about seconds."""
  from cifar10lib.base.compat import tf
  with tf.Graph().as_default():
    a = tf.Variable(tf.random_normal([n, n]), name='a')
    b = tf.Variable(tf.random_normal([n, n]), name='b')
    product = tf.matmul(tf.cast(a, dtype), tf.cast(b, dtype))
    # Reduce to a scalar so that fetching the result costs nothing.
    fetch = tf.reduce_sum(tf.cast(product[:1, :1], tf.float32))
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      sess.run(fetch)  # warm-up: kernels chosen, memory allocated
      best, end = 0.0, time.time() + seconds
      while time.time() < end:
        start = time.time()
        sess.run(fetch)
        best = max(best, 2.0 * n ** 3 / (time.time() - start) / 1e9)
  return best


def measure(dtype_name, args):
  """One dtype's line, measured in a child process: oneDNN aborts the whole
  process (not a TensorFlow error) where a dtype has no kernel on the ISA
  it was limited to, e.g. bfloat16 under ONEDNN_MAX_CPU_ISA=AVX2."""
  child = subprocess.run(
      [sys.executable, os.path.abspath(__file__), '--n', str(args.n),
       '--seconds', str(args.seconds), '--only', dtype_name],
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
  if child.returncode == 0 and child.stdout.strip():
    return child.stdout.strip()
  reason = (child.stderr.strip().splitlines() or ['exit %d' % child.returncode])
  return '%s: not available on this ISA (%s)' % (
      dtype_name, reason[-1].strip().replace('what():', '').strip())


def only(dtype_name, args):
  from cifar10lib.base.compat import tf
  dtype = tf.as_dtype(dtype_name)
  try:
    rate = gflops(dtype, args.n, args.seconds)
  except tf.errors.OpError as e:
    return '%s: not available on this runtime (%s)' % (
        dtype_name, e.message.splitlines()[0])
  return '%s: %.0f GFLOP/s (%dx%d matrix products, best of %g s)' % (
      dtype_name, rate, args.n, args.n, args.seconds)


def main(argv):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--n', type=int, default=2048)
  parser.add_argument('--seconds', type=float, default=5.0)
  parser.add_argument('--only', choices=DTYPES, default=None,
                      help='measure this dtype in this process and print its line')
  args = parser.parse_args(argv)
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  if args.only:
    print(only(args.only, args), flush=True)
    return
  import report  # bench/, next to this file
  print('machine: %s; %d cores available' % (
      report.cpu_description(), len(os.sched_getaffinity(0))), flush=True)
  for dtype_name in DTYPES:
    print(measure(dtype_name, args), flush=True)


if __name__ == '__main__':
  main(sys.argv[1:])
