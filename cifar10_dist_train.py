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

from datetime import datetime
import os
import signal
import threading
import time

from absl import flags

from cifar10lib import cli
from cifar10lib import cifar10
from cifar10lib import directories
from cifar10lib import cluster_spec
from cifar10lib.compat import tf
from cifar10lib.errors import UserError
from cifar10lib import training

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
                     lower_bound=0)
flags.DEFINE_boolean('sync_replicas', False,
                     'Aggregate one batch from every worker into each update '
                     '(SyncReplicasOptimizer) instead of updating '
                     'asynchronously.')
flags.DEFINE_integer('ps_timeout_secs', 60,
                     'How long a worker tries to reach every parameter '
                     'server before giving up, at the start and when one '
                     'stops answering during training.', lower_bound=1)
flags.DEFINE_integer('worker_timeout_secs', 600,
                     'How long a non-chief worker waits for the chief to '
                     'initialise the model (then gives up) and, with '
                     '--sync_replicas, for an update (then gives up); and how '
                     'long the chief of a fresh asynchronous run waits for '
                     'the other workers to join (then starts without them).',
                     lower_bound=1)

def serve_ps(cluster, task_index):
  """Serves the variables until SIGINT or SIGTERM."""
  stop = []
  for sig in training.STOP_SIGNALS:
    signal.signal(sig, lambda signum, frame: stop.append(signum))
  server = cluster_spec.start_server(cluster, 'ps', task_index)
  print('ps %d: serving at %s (%s)' % (task_index, cluster['ps'][task_index],
                                       server.target), flush=True)
  while not stop:
    time.sleep(cluster_spec.POLL_SECS)
  print('ps %d: stopped by %s' % (task_index, signal.Signals(stop[0]).name),
        flush=True)


class _SyncOptimizerMaker(object):
  """Wraps the model's optimizer in a SyncReplicasOptimizer, and keeps it."""

  def __init__(self, num_workers):
    self.num_workers = num_workers
    self.optimizer = None

  def __call__(self, opt, variable_averages):
    self.optimizer = tf.train.SyncReplicasOptimizer(
        opt, replicas_to_aggregate=self.num_workers,
        total_num_replicas=self.num_workers,
        variable_averages=variable_averages,
        variables_to_average=tf.trainable_variables())
    return self.optimizer


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
    sync = _SyncOptimizerMaker(num_workers) if FLAGS.sync_replicas else None
    # A synchronous update consumes a batch from every worker, which the
    # learning-rate schedule counts in epochs.
    train_op = cifar10.train(
        total_loss, global_step, split.num_examples,
        batch_size=cfg.batch_size * (num_workers if sync else 1),
        recipe=cfg.recipe, make_sync_optimizer=sync,
        precision=cfg.precision)
  return train_op, total_loss, sync


class _ClusterRateHook(tf.train.SessionRunHook):
  """On the chief: the whole cluster's examples/sec, from global_step."""

  def __init__(self, examples_per_update, log_frequency, num_workers):
    self._examples_per_update = examples_per_update
    self._log_frequency = log_frequency
    self._num_workers = num_workers
    self._runs = 0

  def begin(self):
    self._global_step = tf.train.get_global_step()

  def after_create_session(self, session, coord):
    self._start = (time.time(), session.run(self._global_step))

  def before_run(self, run_context):
    return tf.train.SessionRunArgs(self._global_step)

  def after_run(self, run_context, run_values):
    self._runs += 1
    if self._runs % self._log_frequency:
      return
    now, step = time.time(), run_values.results + 1
    start_time, start_step = self._start
    rate = (step - start_step) * self._examples_per_update / max(
        now - start_time, 1e-6)
    print('%s: cluster: global step %d, %.1f examples/sec in total over %d '
          'worker%s' % (datetime.now(), step, rate, self._num_workers,
                        's' if self._num_workers > 1 else ''), flush=True)
    self._start = (now, step)


def _ranges(values):
  """'0-3,3-5,9' for [0, 1, 2, 3, 3, 4, 5, 9]: runs of consecutive values."""
  runs = []
  for v in values:
    if runs and v == runs[-1][1] + 1:
      runs[-1][1] = v
    else:
      runs.append([v, v])
  return ','.join('%d-%d' % (a, b) if a != b else '%d' % a
                  for a, b in runs) or 'none'


class _SyncReportHook(tf.train.SessionRunHook):
  """Records the global steps of the gradients sent and updates received.

  A SyncReplicasOptimizer worker computes its gradient at its local step,
  then blocks until an update releases a token holding the new global step;
  the train op returns that token, which becomes the next local step.
  """

  def __init__(self, train_op):
    self._token = train_op
    self.sent = []
    self.received = []

  def begin(self):
    self._local_step = [
        v for v in tf.get_collection(tf.GraphKeys.LOCAL_VARIABLES)
        if v.op.name.endswith('sync_rep_local_step')][0]

  def after_create_session(self, session, coord):
    self._next = int(session.run(self._local_step))

  def before_run(self, run_context):
    return tf.train.SessionRunArgs(self._token)

  def after_run(self, run_context, run_values):
    self.sent.append(self._next)
    self._next = int(run_values.results)
    self.received.append(self._next)


class _SyncUpdatesHook(tf.train.SessionRunHook):
  """Sets up a worker's SyncReplicasOptimizer; the chief also applies updates.

  It does what the optimizer's make_session_run_hook() does with no initial
  tokens (a worker's first gradient waits for every other worker's, so each
  update holds one batch from each), except for the chief's update thread:
  that one waits for gradients until the session closes, and registered with
  the coordinator, as there, it would hold the close for the grace period
  (120 s) and TF 2.x would then report its cancelled wait as an error.
  """

  def __init__(self, sync_optimizer, is_chief):
    self._optimizer = sync_optimizer
    self._is_chief = is_chief

  def begin(self):
    opt = self._optimizer
    self._not_ready = opt.ready_for_local_init_op
    if self._is_chief:
      self._init_op = opt.chief_init_op
      self._update_op = opt.get_chief_queue_runner().enqueue_ops[0]
    else:
      self._init_op = opt.local_step_init_op

  def after_create_session(self, session, coord):
    not_ready = session.run(self._not_ready)
    if len(not_ready):
      raise UserError('variables not initialised after the chief\'s '
                              'initialisation: %s' % not_ready)
    session.run(self._init_op)
    if self._is_chief:
      threading.Thread(target=self._apply_updates, args=(session, coord),
                       name='sync_updates', daemon=True).start()

  def _apply_updates(self, session, coord):
    try:
      while not coord.should_stop():
        session.run(self._update_op)
    except tf.errors.OpError as e:
      if not coord.should_stop():
        coord.request_stop(e)


class _StartTogetherHook(tf.train.SessionRunHook):
  """On a fresh start, every worker's first step waits for the others'.

  Otherwise, with asynchronous updates, whichever worker is ready first
  trains alone for a while. Each other worker leaves its index in a queue on
  the first ps task once its session is ready, then waits for the chief's
  first step; the chief takes all the indices before that step. After
  timeout_secs each goes ahead without the late ones. Resuming (global step
  above 0) nobody waits: the other workers may be training already.
  """

  def __init__(self, task_index, num_workers, timeout_secs):
    self._task_index = task_index
    self._num_workers = num_workers
    self._options = tf.RunOptions(timeout_in_ms=int(timeout_secs * 1000))
    self._timeout_secs = timeout_secs

  def begin(self):
    with tf.device('/job:ps/task:0'):
      joined = tf.FIFOQueue(-1, tf.int32, shapes=[], name='workers_joined',
                            shared_name='workers_joined')
    self._global_step = tf.train.get_global_step()
    if self._task_index == 0:
      self._wait_op = joined.dequeue_many(self._num_workers - 1)
    else:
      self._join_op = joined.enqueue(self._task_index)

  def after_create_session(self, session, coord):
    fresh = not session.run(self._global_step)
    if self._task_index:
      session.run(self._join_op)
      deadline = time.time() + self._timeout_secs
      while (fresh and not session.run(self._global_step) and
             time.time() < deadline):
        time.sleep(cluster_spec.POLL_SECS)
    elif fresh:
      try:
        session.run(self._wait_op, options=self._options)
        print('All %d workers have joined' % self._num_workers, flush=True)
      except tf.errors.DeadlineExceededError:
        print('Warning: not all %d workers joined within %d s '
              '(--worker_timeout_secs); starting without them'
              % (self._num_workers, self._timeout_secs), flush=True)


class _UpdateTimeoutHook(tf.train.SessionRunHook):
  """Bounds each step, so a synchronous worker does not wait forever."""

  def __init__(self, timeout_secs):
    self._options = tf.RunOptions(timeout_in_ms=int(timeout_secs * 1000))

  def before_run(self, run_context):
    return tf.train.SessionRunArgs(None, options=self._options)


def wait_for_chief(target, config, cluster, timeout_secs, not_ready):
  """Polls until the chief has initialised every variable on the ps tasks.

  not_ready lists the uninitialised global variables; MonitoredTrainingSession
  would check only every 30 seconds.
  """
  deadline = time.time() + timeout_secs
  with tf.Session(target, config=config) as sess:
    if len(sess.run(not_ready)):
      print('Waiting for the chief (worker 0 at %s) to initialise the model'
            % cluster['worker'][0], flush=True)
    while len(sess.run(not_ready)):
      if time.time() >= deadline:
        raise UserError(
            'the chief (worker 0 at %s) did not initialise the model within '
            '%d s (--worker_timeout_secs)' % (cluster['worker'][0],
                                              timeout_secs))
      time.sleep(cluster_spec.POLL_SECS)


def _worker_hooks(cfg, train_op, sync, task_index, num_workers):
  is_chief = task_index == 0
  hooks = []
  if is_chief:
    hooks.append(_ClusterRateHook(
        cfg.batch_size * (num_workers if sync else 1), cfg.loop.log_frequency,
        num_workers))
  if sync:
    hooks.append(_SyncUpdatesHook(sync.optimizer, is_chief))
    hooks.append(_SyncReportHook(train_op))
    if not is_chief:
      hooks.append(_UpdateTimeoutHook(FLAGS.worker_timeout_secs))
  elif num_workers > 1:
    hooks.append(_StartTogetherHook(task_index, num_workers,
                                    FLAGS.worker_timeout_secs))
  return hooks


def _ps_lost(cfg, task_index):
  """What a worker does when a ps task has stopped answering: ends, in a line.

  Its steps wait on that task, and the variables it held are gone with it,
  so nothing more can be trained or saved; the chief's last checkpoint is
  where a restarted cluster resumes.
  """
  kept = ('the last checkpoint in %s is kept' % cfg.loop.train_dir
          if task_index == 0 else "the chief's last checkpoint is kept")

  def on_lost(ps_index, address, signal_name):
    if signal_name:
      cli.exit_now(
          'worker %d: stopped by %s; parameter server ps %d at %s does not '
          'answer, so no final checkpoint was saved; %s'
          % (task_index, signal_name, ps_index, address, kept),
          128 + signal.Signals[signal_name])
    cli.exit_now(
        'worker %d: parameter server ps %d at %s has not answered for %d s '
        '(--ps_timeout_secs): it has stopped, and the variables it held with '
        'it; %s: restart the ps and the workers to resume from it'
        % (task_index, ps_index, address, FLAGS.ps_timeout_secs, kept))
  return on_lost


def run_worker(cfg, cluster, task_index):
  """Trains as worker task_index until the cluster reaches --max_steps."""
  is_chief = task_index == 0
  num_workers = len(cluster['worker'])
  cluster_spec.wait_for_ps(cluster['ps'], FLAGS.ps_timeout_secs)
  cli.maybe_download_and_extract(cfg)
  # Bad data fails before --train_dir is made.
  split = cli.data_split(cfg, 'train')
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
      training.stop_requested):
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
      wait_for_chief(server.target, config, cluster,
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
          'worker %d: no update within %d s (--worker_timeout_secs): the '
          'chief or another worker has stopped' % (task_index,
                                                   FLAGS.worker_timeout_secs))
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
    if isinstance(hook, _SyncReportHook):
      print('worker %d: sent %d gradients, computed at global steps %s; '
            'received %d updates, at global steps %s'
            % (task_index, len(hook.sent), _ranges(hook.sent),
               len(hook.received), _ranges(hook.received)), flush=True)


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
