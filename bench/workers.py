"""The processes that bench/benchmark.py measures besides the scripts.

    memory_worker: cifar10_train.py's graph, with its flags, trained on one
        batch held in variables (no input pipeline) in a plain session loop;
    eval_worker: evaluation.py's Evaluator, timed over the test images.

Each runs alone in a process started by `benchmark.py --worker`, imports
the modules of the checkout under measure (--repo), which must have cli.py's
API, and prints lines that benchmark.py parses.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import sys
import time

import library  # bench/, next to this file


def run(worker, args, *more):
  """Runs worker(args, *more); a UserError (e.g. --precision) is one line."""
  sys.path.insert(0, args.repo)
  UserError = library.module('errors').UserError
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
  cli = library.module('cli')
  cli.define_flags(*groups)
  # benchmark.py's own options took --batch_size, --precision, --model and
  # --dataset.
  (precision,) = args.precision
  flags.FLAGS([sys.argv[0], '--batch_size=%d' % args.batch_size,
               '--precision=' + precision, '--model=' + args.model,
               '--dataset=' + args.dataset] + args.rest)
  config = library.module('config')
  return cli, config.from_flags(flags.FLAGS)


def memory_worker(args):
  """Trains cifar10_train.py's graph on one batch held in variables."""
  import numpy as np
  cli, cfg = _worker_config(args, 'data', 'batch', 'model', 'training',
                            'session')
  cifar10 = library.module('cifar10')
  tf = library.module('compat').tf
  precision = library.module('precision')
  batch = args.batch_size
  ds = cfg.dataset
  size = ds.image_size if cli.full_images(cfg) else ds.crop_size
  rng = np.random.RandomState(0)
  fed = rng.standard_normal([batch, size, size, ds.depth]).astype(np.float32)
  # The whitened networks' first layer comes from the (here: fed) images.
  from cifar10lib.models import whitened_cnn
  if cfg.model in whitened_cnn.WIDTHS:
    whitened_cnn.prepare_images(fed)
  with tf.Graph().as_default():
    global_step = tf.train.get_or_create_global_step()
    images = tf.Variable(fed, trainable=False, name='fed_images')
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
  tf = library.module('compat').tf
  evaluation = library.module('evaluation')
  datasets = library.module('datasets')
  evaluator = evaluation.Evaluator(
      datasets.split(args.data_dir, 'test', cfg.dataset), num_examples,
      cli.session_config(cfg), args.batch_size, cfg.use_fp16,
      cfg.model_options(train=False), cfg.moving_average, cfg.preprocessing,
      full=cli.full_images(cfg))
  checkpoint = tf.train.latest_checkpoint(args.checkpoint_dir)
  writer = tf.summary.FileWriter(args.eval_dir)
  for _ in range(2):
    start = time.time()
    _, total, _ = evaluator.evaluate(checkpoint, writer)
    print('eval %d images in %.3f s' % (total, time.time() - start),
          flush=True)
  writer.close()
