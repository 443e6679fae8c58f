"""Data layout on this CPU: the fast network's layers timed in NHWC and NCHW.

    python bench/data_layout.py                        # the wide widths, bfloat16
    python bench/data_layout.py --precision float32

The networks build their graphs in NHWC, TensorFlow's default on CPU. This
times one training step's work (forward, backward, a plain gradient step)
of whitened_cnn's layers -- a 2x2 convolution, three groups of
convolution, max-pool, fused batch norm and GELU, the final pool and the
linear layer -- on random 32x32 images held in memory, in each layout, one
after the other in one process. It prints examples/sec per layout (the
median of the timed steps), or why a layout cannot run on this runtime.
Nothing here is a test.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import argparse
import os
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

LAYOUTS = ('NHWC', 'NCHW')


def _gelu(x, tf):
  return 0.5 * x * (1.0 + tf.math.erf(x * 0.7071067811865476))


def training_step(tf, layout, batch_size, widths, dtype):
  """The op of one training step in layout, on images held in memory."""
  channels = 1 if layout == 'NCHW' else 3  # the axis of the channels
  shape = ([batch_size, 3, 32, 32] if layout == 'NCHW'
           else [batch_size, 32, 32, 3])
  images = tf.constant(np.random.RandomState(0).rand(*shape), dtype)
  labels = tf.constant(np.arange(batch_size) % 10)
  window = [1, 1, 2, 2] if layout == 'NCHW' else [1, 2, 2, 1]

  def conv(x, filters, size, padding='SAME'):
    kernel = tf.get_variable('conv%d' % len(tf.global_variables()),
                             [size, size, x.shape.as_list()[channels], filters])
    return tf.nn.conv2d(x, tf.cast(kernel, dtype), [1, 1, 1, 1], padding,
                        data_format=layout)

  def norm(x):
    width = x.shape.as_list()[channels]
    y, _, _ = tf.nn.fused_batch_norm(
        x, tf.ones([width]), tf.get_variable(
            'offset%d' % len(tf.global_variables()), [width],
            initializer=tf.zeros_initializer()),
        epsilon=1.001e-5, data_format=layout, is_training=True)
    return _gelu(y, tf)

  x = _gelu(conv(images, 24, 2, 'VALID'), tf)
  for width in widths:
    x = conv(x, width, 3)
    x = tf.nn.max_pool(x, window, window, 'VALID', data_format=layout)
    x = norm(x)
    x = norm(conv(x, width, 3))
  x = tf.reduce_max(x, [2, 3] if layout == 'NCHW' else [1, 2])
  weights = tf.get_variable('linear', [widths[-1], 10])
  logits = tf.cast(tf.matmul(x, tf.cast(weights, dtype)), tf.float32)
  loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
      labels=labels, logits=logits))
  return tf.train.GradientDescentOptimizer(0.01).minimize(loss)


def examples_per_sec(layout, args):
  """The median examples/sec of args.steps timed steps in layout."""
  from cifar10lib.base.compat import tf
  with tf.Graph().as_default():
    step = training_step(tf, layout, args.batch_size, args.widths,
                         tf.as_dtype(args.precision))
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      sess.run(step)  # warm-up: kernels chosen, memory allocated
      times = []
      for _ in range(args.steps):
        start = time.time()
        sess.run(step)
        times.append(time.time() - start)
  return args.batch_size / float(np.median(times))


def main(argv):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--batch_size', type=int, default=256)
  parser.add_argument('--widths', default='64,256,256',
                      help='the three groups\' widths (whitened_cnn_wide; '
                      'whitened_cnn: 32,64,64)')
  parser.add_argument('--precision', default='bfloat16',
                      choices=['float32', 'bfloat16'])
  parser.add_argument('--steps', type=int, default=10)
  args = parser.parse_args(argv)
  args.widths = [int(w) for w in args.widths.split(',')]
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  import report  # bench/, next to this file
  from cifar10lib.base.compat import tf
  print('machine: %s; %d cores available; %s, widths %s, batch %d' % (
      report.cpu_description(), len(os.sched_getaffinity(0)), args.precision,
      ','.join(map(str, args.widths)), args.batch_size))
  for layout in LAYOUTS:
    try:
      rate = examples_per_sec(layout, args)
    except (tf.errors.OpError, TypeError, ValueError) as e:
      reason = getattr(e, 'message', None) or str(e)
      print('%s: cannot run on this runtime (%s)' % (
          layout, reason.strip().splitlines()[0]), flush=True)
      continue
    print('%s: %.1f examples/sec (median of %d steps)' % (
        layout, rate, args.steps), flush=True)


if __name__ == '__main__':
  main(sys.argv[1:])
