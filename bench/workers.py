"""The processes that bench/benchmark.py measures besides the scripts.

    memory_worker: cifar10_train.py's graph, with its flags, trained on one
        batch held in variables (no input pipeline) in a plain session loop;
    eval_worker: cifar10lib.evaluation's Evaluator, timed over the test images.

Each runs alone in a process started by `benchmark.py --worker`, imports
the modules of the checkout under measure (--repo), which must have cli.py's
API, and prints lines that benchmark.py parses.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import sys
import time


def run(worker, args, *more):
  """Runs worker(args, *more); a UserError (e.g. --precision) is one line."""
  sys.path.insert(0, args.repo)
  from cifar10lib.errors import UserError
  try:
    return worker(args, *more)
  except UserError as e:
    sys.stderr.write('benchmark.py --worker: error: %s\n' % e)
    return 1


def _worker_config(args, *groups):
  """Defines the scripts' flags of groups, parses the worker's own; returns
  (the cli module, the config.Config of those flags)."""
  from absl import flags
  sys.path.insert(0, args.repo)
  from cifar10lib import cli
  cli.define_flags(*groups)
  # benchmark.py's own options took --batch_size, --precision, --model and
  # --dataset.
  (precision,) = args.precision
  flags.FLAGS([sys.argv[0], '--batch_size=%d' % args.batch_size,
               '--precision=' + precision, '--model=' + args.model,
               '--dataset=' + args.dataset] + args.rest)
  from cifar10lib import config
  return cli, config.from_flags(flags.FLAGS)


def memory_worker(args):
  """Trains cifar10_train.py's graph on one batch held in variables."""
  import numpy as np
  cli, cfg = _worker_config(args, 'data', 'batch', 'model', 'training',
                            'session')
  from cifar10lib import cifar10
  from cifar10lib.compat import tf
  from cifar10lib import precision
  batch = args.batch_size
  ds = cfg.dataset
  rng = np.random.RandomState(0)
  with tf.Graph().as_default():
    global_step = tf.train.get_or_create_global_step()
    images = tf.Variable(
        rng.standard_normal([batch, ds.crop_size, ds.crop_size, ds.depth])
        .astype(np.float32), trainable=False, name='fed_images')
    labels = tf.Variable(
        rng.randint(0, ds.num_classes, size=[batch]).astype(np.int32),
        trainable=False, name='fed_labels')
    logits = cifar10.inference(images, **cfg.model_options())
    total_loss = cifar10.loss(logits, labels)
    train_op = cifar10.train(total_loss, global_step, args.train_records,
                             batch, cfg.recipe, precision=cfg.precision)
    # The default session still gets the precision's rewrite: only the
    # thread and XLA settings are left at TensorFlow's defaults.
    config = (cli.session_config(cfg) if args.session == 'train' else
              precision.configure(tf.ConfigProto(), cfg.precision))
    with tf.Session(config=config) as sess:
      sess.run([tf.global_variables_initializer(),
                tf.local_variables_initializer()])
      start = time.time()
      for step in range(1, args.steps + 1):
        _, loss = sess.run([train_op, total_loss])
        if step % 10 == 0:
          now = time.time()
          sec_per_batch = (now - start) / 10
          print('step %d, loss = %.2f (%.1f examples/sec; %.3f sec/batch)'
                % (step, loss, batch / sec_per_batch, sec_per_batch),
                flush=True)
          start = now


def eval_worker(args, num_examples):
  """Times the library's Evaluator over num_examples test images, twice."""
  cli, cfg = _worker_config(args, 'data', 'batch', 'model', 'session')
  from cifar10lib.compat import tf
  from cifar10lib import evaluation
  from cifar10lib import datasets
  evaluator = evaluation.Evaluator(
      datasets.split(args.data_dir, 'test', cfg.dataset), num_examples,
      cli.session_config(cfg), args.batch_size, cfg.use_fp16,
      cfg.model_options(train=False))
  checkpoint = tf.train.latest_checkpoint(args.checkpoint_dir)
  writer = tf.summary.FileWriter(args.eval_dir)
  for _ in range(2):
    start = time.time()
    _, total, _ = evaluator.evaluate(checkpoint, writer)
    print('eval %d images in %.3f s' % (total, time.time() - start),
          flush=True)
  writer.close()
