"""Trains the CIFAR-10 model on a cluster with TensorFlow's distributed runtime.

    CLUSTER="--ps_hosts=localhost:2222
             --worker_hosts=localhost:2223,localhost:2224"
    python cifar10_dist_train.py $CLUSTER --job_name=ps --task_index=0
    python cifar10_dist_train.py $CLUSTER --job_name=worker --task_index=0
    python cifar10_dist_train.py $CLUSTER --job_name=worker --task_index=1

Parameter-server (ps) tasks hold the variables and serve them over gRPC until
stopped. Every worker builds the whole model: its variables live on the ps
tasks, its input pipeline and its computation stay on the worker. Worker 0 is
the chief: it initialises the variables or resumes from the latest checkpoint
in --train_dir, and writes checkpoints (itself, so --train_dir need exist on
its machine only) and summaries there; cifar10_eval.py evaluates them as it
does cifar10_train.py's. A worker gives up with an error when a ps task cannot
be reached within --ps_timeout_secs (at the start, or once it stops answering
during training: its variables are then lost, and a restarted cluster resumes
from the last checkpoint), or when it waits longer than
--worker_timeout_secs for the others (see that flag). Every worker stops once
the global step reaches --max_steps.

Updates are asynchronous by default: each worker applies its own gradients,
and the global step counts the updates of the whole cluster. With
--sync_replicas each update averages the gradients of one batch from every
worker.

Without the cluster flags, the cluster and this task come from the TF_CONFIG
environment variable that cluster managers set, e.g.
    {"cluster": {"ps": ["h0:2222"], "worker": ["h1:2222", "h2:2222"]},
     "task": {"type": "worker", "index": 0}}
where a "chief" job, if present, is taken as worker 0.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import os
import signal
import time

from absl import flags

from cifar10lib.base.compat import tf
from cifar10lib.base.errors import UserError
from cifar10lib.checkpoints import directories
from cifar10lib.cli import cli
from cifar10lib.cli import flag_groups
from cifar10lib.training import cifar10
from cifar10lib.training import cluster_spec
from cifar10lib.training import distributed
from cifar10lib.training import stopping
from cifar10lib.training import training

FLAGS = flags.FLAGS
cli.define_flags('data', 'download', 'split', 'batch', 'model', 'training',
                 'session')
flags.DEFINE_string('ps_hosts', None,
                    'Comma-separated host:port list of the parameter servers.')
flags.DEFINE_string('worker_hosts', None,
                    'Comma-separated host:port list of the workers; the '
                    'first one is the chief.')
flags.DEFINE_enum('job_name', None, ['ps', 'worker'],
                  'This task\'s job. Without --ps_hosts, --worker_hosts, '
                  '--job_name and --task_index the cluster comes from '
                  '$TF_CONFIG.')
flags.DEFINE_integer('task_index', None,
                     'This task\'s index within its job (default 0).',
                     lower_bound=0, upper_bound=flag_groups.MAX_INT64)
flags.DEFINE_boolean('sync_replicas', False,
                     'Aggregate one batch from every worker into each update '
                     '(SyncReplicasOptimizer) instead of updating '
                     'asynchronously.')
flags.DEFINE_integer('ps_timeout_secs', 60,
                     'How long a worker tries to reach every parameter '
                     'server before giving up, at the start and when one '
                     'stops answering during training.', lower_bound=1,
                     upper_bound=flag_groups.MAX_SECS)
flags.DEFINE_integer('worker_timeout_secs', 600,
                     'How long a non-chief worker waits for the chief to '
                     'initialise the model (then gives up), any worker with '
                     '--sync_replicas for an update (then gives up), and how '
                     'long the chief of a fresh asynchronous run waits for '
                     'the other workers to join (then starts without them).',
                     lower_bound=1, upper_bound=flag_groups.MAX_SECS)

def serve_ps(cluster, task_index):
  """Serves the variables until SIGINT or SIGTERM."""
  stop = []
  for sig in stopping.STOP_SIGNALS:
    signal.signal(sig, lambda signum, frame: stop.append(signum))
  server = cluster_spec.start_server(cluster, 'ps', task_index)
  print('ps %d: serving at %s (%s)' % (task_index, cluster['ps'][task_index],
                                       server.target), flush=True)
  while not stop:
    time.sleep(cluster_spec.POLL_SECS)
  print('ps %d: stopped by %s' % (task_index, signal.Signals(stop[0]).name),
        flush=True)


def build_model(cfg, cluster, task_index, split):
  """Builds this worker's replica; returns (train_op, loss, sync maker).

  split (a datasets.Split) is the training data. The sync maker is None
  when updates are asynchronous.
  """
  worker_device = '/job:worker/task:%d' % task_index
  num_workers = len(cluster['worker'])
  with tf.device(tf.train.replica_device_setter(
      worker_device=worker_device, cluster=tf.train.ClusterSpec(cluster))):
    global_step = tf.train.get_or_create_global_step()
    with tf.device(worker_device + '/cpu:0'):
      images, labels = cli.distorted_inputs(cfg, split)
    logits = cifar10.inference(images, **cfg.model_options())
    total_loss = cifar10.loss(logits, labels)
    sync = distributed.SyncOptimizerMaker(num_workers) if FLAGS.sync_replicas else None
    # A synchronous update consumes a batch from every worker, which the
    # learning-rate schedule counts in epochs.
    train_op = cifar10.train(
        total_loss, global_step, split.num_examples,
        batch_size=cfg.batch_size * (num_workers if sync else 1),
        recipe=cfg.recipe, make_sync_optimizer=sync,
        precision=cfg.precision)
  return train_op, total_loss, sync


def _worker_hooks(cfg, train_op, sync, task_index, num_workers):
  is_chief = task_index == 0
  hooks = []
  if is_chief:
    hooks.append(distributed.ClusterRateHook(
        cfg.batch_size * (num_workers if sync else 1), cfg.loop.log_frequency,
        num_workers))
  if sync:
    hooks.append(distributed.SyncUpdatesHook(sync.optimizer, is_chief))
    hooks.append(distributed.SyncReportHook(train_op))
    # The chief too: its update waits for every other worker's gradient,
    # and a worker whose host is gone never sends one.
    hooks.append(distributed.UpdateTimeoutHook(FLAGS.worker_timeout_secs))
  elif num_workers > 1:
    hooks.append(distributed.StartTogetherHook(task_index, num_workers,
                                    FLAGS.worker_timeout_secs))
  return hooks


def _kept(cfg, task_index):
  """Where a stopped cluster resumes from, as a worker can say it."""
  return ('the last checkpoint in %s is kept' % cfg.loop.train_dir
          if task_index == 0 else "the chief's last checkpoint is kept")


def _ps_lost(cfg, task_index):
  """What a worker does when a ps task has stopped answering: ends, in a line.

  Its steps wait on that task, and the variables it held are gone with it,
  so nothing more can be trained or saved; the chief's last checkpoint is
  where a restarted cluster resumes.
  """
  kept = _kept(cfg, task_index)

  def on_lost(ps_index, address, signal_name):
    if signal_name:
      cli.exit_now(
          'worker %d: stopped by %s; parameter server ps %d at %s does not '
          'answer, so no final checkpoint was saved; %s'
          % (task_index, signal_name, ps_index, address, kept),
          128 + signal.Signals[signal_name])
    cli.exit_now(
        'worker %d: parameter server ps %d at %s has not answered for %d s '
        '(--ps_timeout_secs): it has stopped or cannot be reached, and the '
        'variables it held with it; %s: restart the ps and the workers to '
        'resume from it'
        % (task_index, ps_index, address, FLAGS.ps_timeout_secs, kept))
  return on_lost


def run_worker(cfg, cluster, task_index):
  """Trains as worker task_index until the cluster reaches --max_steps."""
  is_chief = task_index == 0
  num_workers = len(cluster['worker'])
  with cli.stop_signals_interrupt():
    cluster_spec.wait_for_ps(cluster['ps'], FLAGS.ps_timeout_secs)
  cli.maybe_download_and_extract(cfg)
  # Bad data fails before --train_dir is made.
  split = cli.data_split(cfg, 'train')
  cfg = cli.prepare_model(cfg, split)
  if is_chief:
    directories.prepare_train_dir(cfg.loop.train_dir)
  # A worker talks to the ps tasks and itself only, so that it neither waits
  # for nor depends on the other workers.
  config = cli.session_config(
      cfg,
      device_filters=['/job:ps', '/job:worker/task:%d' % task_index])
  server = cluster_spec.start_server(cluster, 'worker', task_index,
                                    config=config)
  print('worker %d%s: server at %s, %s updates' % (
      task_index, ' (chief)' if is_chief else '',
      cluster['worker'][task_index],
      'synchronous' if FLAGS.sync_replicas else 'asynchronous'), flush=True)
  # The chief's seed sets the initial weights; the others' only their own
  # data order, which must differ from the chief's.
  seed = None if cfg.seed is None else cfg.seed + task_index
  with training.new_graph(seed), cluster_spec.watching_ps(
      cluster['ps'], FLAGS.ps_timeout_secs, _ps_lost(cfg, task_index),
      stopping.stop_requested):
    train_op, total_loss, sync = build_model(cfg, cluster, task_index, split)
    hooks = _worker_hooks(cfg, train_op, sync, task_index, num_workers)
    # The chief saves and restores the variables itself, in one file, so
    # that --train_dir need exist on its machine only (a sharded saver would
    # have each ps task write its part on its own machine).
    with tf.device('/job:worker/task:%d/cpu:0' % task_index):
      scaffold = tf.train.Scaffold(saver=tf.train.Saver(
          sharded=False, save_relative_paths=True))
    if not is_chief:
      # The local variables are each worker's own business.
      distributed.wait_for_chief(server.target, config, cluster,
                     FLAGS.worker_timeout_secs,
                     sync.optimizer.ready_for_local_init_op if sync else
                     tf.report_uninitialized_variables(tf.global_variables()))
    try:
      logger = training.run_training(
          train_op, total_loss, cfg.batch_size, cfg.loop,
          config=config, hooks=hooks,
          master=server.target, is_chief=is_chief,
          max_wait_secs=FLAGS.worker_timeout_secs, scaffold=scaffold,
          examples_per_epoch=cli.epoch_examples(cfg, split),
          # A synchronous update (one global step) takes every worker's batch.
          examples_per_global_step=cfg.batch_size * (
              num_workers if FLAGS.sync_replicas else 1),
          start_line=cli.start_line(
              cfg, split, cfg.loop.train_dir if is_chief else None))
    except tf.errors.DeadlineExceededError:
      raise UserError(
          'worker %d: no update within %d s (--worker_timeout_secs): %s has '
          'stopped or cannot be reached; %s' % (
              task_index, FLAGS.worker_timeout_secs,
              'another worker' if is_chief else 'the chief or another worker',
              _kept(cfg, task_index)))
    except tf.errors.OpError as e:
      # A remote task failed or disagrees about the cluster: no traceback
      # of this process helps there.
      raise UserError('worker %d stopped: %s%s' % (
          task_index, cluster_spec.first_lines(e),
          ' (every task must be started with the same cluster)'
          if 'No worker known' in e.message else ''))
  print('worker %d: ran %d steps (%d examples); last global step %d'
        % (task_index, logger.runs, logger.runs * cfg.batch_size,
           logger.step), flush=True)
  for hook in hooks:
    if isinstance(hook, distributed.SyncReportHook):
      print('worker %d: sent %d gradients, computed at global steps %s; '
            'received %d updates, at global steps %s'
            % (task_index, len(hook.sent), distributed.ranges(hook.sent),
               len(hook.received), distributed.ranges(hook.received)), flush=True)
  cli.exit_if_stopped()


def main(argv, cfg):
  del argv
  cluster, job_name, task_index = cluster_spec.resolve_cluster(
      FLAGS.ps_hosts, FLAGS.worker_hosts, FLAGS.job_name, FLAGS.task_index,
      os.environ.get(cluster_spec.TF_CONFIG))
  if job_name == 'ps':
    serve_ps(cluster, task_index)
  else:
    run_worker(cfg, cluster, task_index)


if __name__ == '__main__':
  cli.run(main)
