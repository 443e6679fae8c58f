"""The pieces of asynchronous and synchronous training across a cluster.

cifar10_dist_train.py runs TensorFlow's distributed runtime: parameter
servers hold the variables, workers train replicas of the network. These
are the hooks a worker adds to the shared training loop (training.py): the
cluster's rate on the chief, the synchronous updates and their report, the
workers starting together, the bounded waits for the chief and for updates.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

from datetime import datetime
import threading
import time

from cifar10lib.base.compat import tf
from cifar10lib.base.errors import UserError
from cifar10lib.training import cluster_spec
from cifar10lib.training import stopping


class SyncOptimizerMaker(object):
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


class ClusterRateHook(tf.train.SessionRunHook):
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


def ranges(values):
  """'0-3,3-5,9' for [0, 1, 2, 3, 3, 4, 5, 9]: runs of consecutive values."""
  runs = []
  for v in values:
    if runs and v == runs[-1][1] + 1:
      runs[-1][1] = v
    else:
      runs.append([v, v])
  return ','.join('%d-%d' % (a, b) if a != b else '%d' % a
                  for a, b in runs) or 'none'


class SyncReportHook(tf.train.SessionRunHook):
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


class SyncUpdatesHook(tf.train.SessionRunHook):
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


class StartTogetherHook(tf.train.SessionRunHook):
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
      self._joined_op = joined.size()
      self._wait_op = joined.dequeue_many(self._num_workers - 1)
    else:
      self._join_op = joined.enqueue(self._task_index)

  def after_create_session(self, session, coord):
    fresh = not session.run(self._global_step)
    if self._task_index:
      session.run(self._join_op)
      deadline = time.time() + self._timeout_secs
      while (fresh and not session.run(self._global_step) and
             time.time() < deadline and not stopping.stop_requested()):
        time.sleep(cluster_spec.POLL_SECS)
    elif fresh:
      self._wait_for_workers(session, coord)

  def _wait_for_workers(self, session, coord):
    """The chief's wait: said once, polled so that a stop signal ends it."""
    others = self._num_workers - 1
    deadline = time.time() + self._timeout_secs
    if session.run(self._joined_op) < others:
      print('Waiting up to %d s (--worker_timeout_secs) for the other %d '
            'worker%s to join; Ctrl-C stops.' % (
                self._timeout_secs, others, 's' if others > 1 else ''),
            flush=True)
    while session.run(self._joined_op) < others:
      if stopping.stop_requested() or coord.should_stop():
        return  # the session stops before its first step, with a checkpoint
      if time.time() >= deadline:
        print('Warning: not all %d workers joined within %d s '
              '(--worker_timeout_secs); starting without them'
              % (self._num_workers, self._timeout_secs), flush=True)
        return
      time.sleep(cluster_spec.POLL_SECS)
    session.run(self._wait_op, options=self._options)
    print('All %d workers have joined' % self._num_workers, flush=True)


class UpdateTimeoutHook(tf.train.SessionRunHook):
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
