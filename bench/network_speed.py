"""Each network's training speed on this CPU, as a share of its matrix peak.

    python bench/network_speed.py                                  # every network, float32
    python bench/network_speed.py --models whitened_cnn --profile type  # and where its step's time goes
    ONEDNN_MAX_CPU_ISA=AVX2 python bench/network_speed.py --models whitened_cnn

For each --models network this builds cifar10_train.py's training graph
(the network, its loss, its recipe's train op, the scripts' session
settings) on one batch held in variables, so no input pipeline is timed
(--input=pipeline feeds it from cifar10_train.py's own input queues on
--data_dir instead, and prints their fill before each timed step),
and prints the median examples/sec of --steps steps after a warm-up, the
training FLOP/s that is (6 x the forward multiply-adds per example:
forward, and twice that backward), that as a share of what TensorFlow's
own float32 matrix products reach on these cores (bench/peak_flops.py),
and the process's CPU time per example (which a busy host's stolen time
does not inflate as it does wall time). It also names the instruction set oneDNN dispatched
to, which decides both figures.

--profile type (or node) adds, per network, the step's time by op type
(or by op): the sum over ops of their time in traced steps, as TensorFlow's RunMetadata records
it (ops overlap on 2 cores, so the column adds to more than the step;
--inter_op_threads=1 keeps them apart).
Nothing here is a test.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import argparse
import collections
import os
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

DEFAULT_MODELS = ('tutorial', 'whitened_cnn', 'whitened_cnn_wide', 'resnet20')
TRAINING_FLOPS_PER_MAC = 6     # 2 per multiply-add, forward + 2x backward
TOP_OPS = 25
TRAIN_EXAMPLES = 50000          # CIFAR-10's epoch, for the recipes' schedules


def forward_macs(graph):
  """Multiply-adds of the forward graph's convolutions and matrix products,
  per example (the batch dimension divided out by the caller)."""
  total = 0
  for op in graph.get_operations():
    if op.type == 'Conv2D':
      out = op.outputs[0].shape.as_list()
      kernel = op.inputs[1].shape.as_list()
      total += np.prod(out) * kernel[0] * kernel[1] * kernel[2]
    elif op.type == 'MatMul':
      a, b = (t.shape.as_list() for t in op.inputs)
      rows = a[1] if op.get_attr('transpose_a') else a[0]
      total += rows * np.prod(b)
  return int(total)


def _config(model, batch_size, precision, extra):
  from absl import flags
  from cifar10lib.cli import cli
  from cifar10lib.cli import config
  flags.FLAGS.unparse_flags()
  flags.FLAGS(['network_speed', '--model=' + model, '--precision=' + precision]
              + (['--batch_size=%d' % batch_size] if batch_size else [])
              + list(extra))
  return cli, config.from_flags(flags.FLAGS)


def _memory_batch(tf, cli, cfg):
  """One random batch held in variables: the network alone is timed."""
  from cifar10lib.models import whitened_cnn
  batch, ds = cfg.batch_size, cfg.dataset
  size = ds.image_size if cli.full_images(cfg) else ds.crop_size
  rng = np.random.RandomState(0)
  fed = rng.standard_normal([batch, size, size, ds.depth]).astype(np.float32)
  if cfg.model in whitened_cnn.WIDTHS:
    whitened_cnn.prepare_images(fed)
  images = tf.Variable(fed, trainable=False, name='fed_images')
  labels = tf.Variable(rng.randint(0, ds.num_classes, [batch]),
                       trainable=False, dtype=tf.int32, name='fed_labels')
  return images, labels, None


def _pipeline_batch(tf, cli, cfg, split):
  """cifar10_train.py's own input pipeline on --data_dir, and the size of
  its shuffling queue (what the trainer would wait on if it ran dry)."""
  from cifar10lib.data import preprocessing
  with tf.device('/cpu:0'):
    mean = preprocessing.mean_variable(cfg.preprocessing, split)
    images, labels = cli.distorted_inputs(cfg, split, mean)
  shuffling = [runner.queue for runner in
               tf.get_collection(tf.GraphKeys.QUEUE_RUNNERS)
               if 'shuffle_batch' in runner.queue.name]
  return images, labels, shuffling[-1].size()


def measure(model, args):
  """(batch, examples/sec median, CPU ms per example, forward MACs per
  example, op profile or None, the queue's sizes before each timed step or
  None)."""
  cli, cfg = _config(model, args.batch_size, args.precision, args.rest)
  from cifar10lib.training import cifar10
  from cifar10lib.base.compat import tf
  batch = cfg.batch_size
  split = None
  if args.input == 'pipeline':
    split = cli.data_split(cfg, 'train')
    cfg = cli.prepare_model(cfg, split)   # the whitening reads the data
  with tf.Graph().as_default() as graph:
    global_step = tf.train.get_or_create_global_step()
    if split:
      images, labels, queue_size = _pipeline_batch(tf, cli, cfg, split)
    else:
      images, labels, queue_size = _memory_batch(tf, cli, cfg)
    logits = cifar10.inference(images, **cfg.model_options())
    macs = forward_macs(graph) / float(batch)
    total_loss = cifar10.loss(logits, labels)
    train_op = cifar10.train(total_loss, global_step, TRAIN_EXAMPLES, batch,
                             cfg.recipe, precision=cfg.precision)
    with tf.Session(config=cli.session_config(cfg)) as sess:
      sess.run([tf.global_variables_initializer(),
                tf.local_variables_initializer()])
      coord = tf.train.Coordinator()
      threads = tf.train.start_queue_runners(sess, coord)
      # A recipe's schedule (and what trains when) follows the step.
      global_step.load(int(args.start_epoch * TRAIN_EXAMPLES / batch), sess)
      for _ in range(args.warmup_steps):
        sess.run(train_op)
      times, sizes = [], []
      cpu_start = time.process_time()
      for _ in range(args.steps):
        if queue_size is not None:
          sizes.append(int(sess.run(queue_size)))
        start = time.time()
        sess.run(train_op)
        times.append(time.time() - start)
      cpu_ms = 1000.0 * (time.process_time() - cpu_start) / (
          args.steps * batch)
      profile = None
      if args.profile:
        profile = op_profile(tf, sess, train_op, args.profile_steps,
                             args.profile == 'node')
      coord.request_stop()
      coord.join(threads, stop_grace_period_secs=5, ignore_live_threads=True)
  return (batch, batch / float(np.median(times)), cpu_ms, macs, profile,
          sizes or None)


def op_profile(tf, sess, fetch, steps, by_node=False):
  """{op type (or name): mean ms per traced step}, the steps' mean ms."""
  per_type = collections.Counter()
  wall = []
  for _ in range(steps):
    meta = tf.RunMetadata()
    start = time.time()
    sess.run(fetch, options=tf.RunOptions(
        trace_level=tf.RunOptions.FULL_TRACE), run_metadata=meta)
    wall.append(time.time() - start)
    for device in meta.step_stats.dev_stats:
      for node in device.node_stats:
        kind = node.timeline_label.split('(')[0].split('=')[-1].strip()
        kind = kind.split(' ')[-1] if kind else node.node_name
        if by_node:
          kind = '%s %s' % (node.node_name, kind)
        per_type[kind] += node.all_end_rel_micros / 1000.0
  return ({k: v / steps for k, v in per_type.items()},
          1000.0 * float(np.mean(wall)))


def main(argv):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--models', default=','.join(DEFAULT_MODELS))
  parser.add_argument('--precision', default='float32',
                      choices=['float32', 'bfloat16'])
  parser.add_argument('--batch_size', type=int, default=0,
                      help='0: each network\'s own default')
  parser.add_argument('--steps', type=int, default=10)
  parser.add_argument('--warmup_steps', type=int, default=3)
  parser.add_argument('--profile', choices=['type', 'node'],
                      help='also trace steps: op time by op type or by op')
  parser.add_argument('--start_epoch', type=float, default=0.0,
                      help='time the steps from this epoch on (the fast '
                      'recipe stops training its whitening after epoch 3)')
  parser.add_argument('--input', choices=['memory', 'pipeline'],
                      default='memory',
                      help='memory: one batch held in variables (the network '
                      'alone); pipeline: cifar10_train.py\'s input queues on '
                      '--data_dir, and their fill before each step')
  parser.add_argument('--profile_steps', type=int, default=3)
  parser.add_argument('--peak_seconds', type=float, default=5.0)
  parser.add_argument('--data_dir', default='/tmp/cifar10_data',
                      help='the CIFAR-10 binaries --input=pipeline reads')
  args, args.rest = parser.parse_known_args(argv)
  args.rest.append('--data_dir=' + args.data_dir)
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  import peak_flops  # bench/, next to these files
  import report
  from absl import flags
  from cifar10lib.base.errors import UserError
  from cifar10lib.cli import cli
  from cifar10lib.base.compat import tf
  cli.define_flags('data', 'batch', 'model', 'training', 'session')
  peak = peak_flops.gflops(tf.float32, 2048, args.peak_seconds)
  print('machine: %s; %d cores available; TensorFlow %s; oneDNN ISA: %s' % (
      report.cpu_description(), len(os.sched_getaffinity(0)),
      tf.__version__, report.onednn_isa()))
  print('float32 matrix-product peak: %.0f GFLOP/s (bench/peak_flops.py)'
        % peak, flush=True)
  print()
  print('input: %s' % ('the training pipeline on %s' % args.data_dir
                        if args.input == 'pipeline' else
                        'one batch held in memory'))
  print()
  print('| network | batch | %s examples/sec (median of %d) | training '
        'MFLOP / example | GFLOP/s | share of float32 peak | CPU ms / '
        'example |' % (args.precision, args.steps))
  print('|---|---:|---:|---:|---:|---:|---:|')
  profiles, queues = [], []
  for model in args.models.split(','):
    try:
      batch, rate, cpu_ms, macs, profile, sizes = measure(model, args)
    except (UserError, flags.Error) as e:  # a bad flag, a missing --data_dir
      sys.exit('network_speed.py: error: %s' % e)
    flops = TRAINING_FLOPS_PER_MAC * macs
    print('| %s | %d | %.1f | %.1f | %.1f | %.0f %% | %.3f |' % (
        model, batch, rate, flops / 1e6, rate * flops / 1e9,
        100.0 * rate * flops / 1e9 / peak, cpu_ms), flush=True)
    if profile:
      profiles.append((model, profile))
    if sizes:
      queues.append((model, sizes))
  for model, sizes in queues:
    print()
    print('%s: examples in the shuffling queue before each timed step: %s '
          '(min %d)' % (model, ' '.join(str(n) for n in sizes), min(sizes)))
  for model, (per_type, step_ms) in profiles:
    print()
    print('%s: a traced step took %.0f ms; op time by type (ms per step, '
          'summed over ops):' % (model, step_ms))
    for kind, ms in sorted(per_type.items(), key=lambda kv: -kv[1])[:TOP_OPS]:
      print('  %-60s %8.1f' % (kind, ms))


if __name__ == '__main__':
  main(sys.argv[1:])
