"""The training loop that every trainer shares, and what it needs around it.

`run_training` runs a train op in a MonitoredTrainingSession: it resumes from
the latest checkpoint of the train directory, logs the tutorial's progress
line, checkpoints and writes summaries, and stops cleanly on SIGINT or
SIGTERM with a checkpoint at the step reached. cifar10_train.py,
cifar10_multi_gpu_train.py and cifar10_dist_train.py build their graphs and
hand them to it.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import collections
import contextlib
from datetime import datetime
import glob
import math
import os
import time

from cifar10lib.base.compat import tf
from cifar10lib.base.errors import UserError
from cifar10lib.checkpoints import checkpoint_saver
from cifar10lib.checkpoints import resuming
from cifar10lib.training import stopping

# How long a step may wait for its input before training gives up.
INPUT_TIMEOUT_SECS = 600
# The name of the signal that stopped the last run_training, or None: the
# script then exits with the status a shell gives a process it ended.
stopped_by = None
# TensorFlow's Saver keeps the latest 5 checkpoints.
KEEP_CHECKPOINTS = 5


class LoopOptions(collections.namedtuple('LoopOptions', [
    'train_dir', 'max_steps', 'log_frequency', 'save_checkpoint_secs',
    'save_checkpoint_steps', 'save_summaries_steps', 'input_timeout_secs',
    'keep_checkpoints', 'record'])):
  """Where the loop writes, how long it runs, how often it logs and saves.

  save_checkpoint_steps, when set, replaces save_checkpoint_secs;
  keep_checkpoints is how many of the latest checkpoints stay (0: all).
  input_timeout_secs bounds each step of a local trainer: a step that gets
  no input for that long ends training with an error. record, when given,
  is the {option: value} that shapes the graph (run_record.py): checked
  against train_dir's record before resuming, and written there when a run
  starts.
  """


LoopOptions.__new__.__defaults__ = (INPUT_TIMEOUT_SECS, KEEP_CHECKPOINTS,
                                      None)


class _LoggerHook(tf.train.SessionRunHook):
  """Prints the tutorial's progress line every --log_frequency steps.

  Given examples_per_epoch, the line ends with the epoch reached, global
  step times examples_per_global_step over examples_per_epoch (", epoch
  3.2"): the tutorial's line is otherwise unchanged, so that what reads it
  still does. It also remembers the last step and loss, so that a NaN can
  be reported with the step it happened at.
  """

  def __init__(self, total_loss, examples_per_step, log_frequency,
               own_steps=False, examples_per_epoch=None,
               examples_per_global_step=None):
    self._loss = total_loss
    self._examples_per_step = examples_per_step
    self._examples_per_epoch = examples_per_epoch
    self._examples_per_global_step = (examples_per_global_step or
                                      examples_per_step)
    self._log_frequency = log_frequency
    # With other workers also moving global_step, a worker paces its lines
    # and its examples/sec by the steps it ran itself.
    self._own_steps = own_steps
    self.step = None
    self.loss = None
    self.runs = 0

  def begin(self):
    self._global_step = tf.train.get_global_step()

  def after_create_session(self, session, coord):
    self._start_time = time.time()
    self._start_step = self.step = session.run(self._global_step)
    self._start_runs = self._created_runs = self.runs
    self._created_step = self.step

  def before_run(self, run_context):
    return tf.train.SessionRunArgs([self._global_step, self._loss])

  def after_run(self, run_context, run_values):
    step_before, self.loss = run_values.results
    self.runs += 1
    # global_step fetched beside train_op may be read before or after its
    # increment; alone, this process knows the step exactly by counting.
    self.step = (step_before + 1 if self._own_steps else
                 self._created_step + self.runs - self._created_runs)
    logs = (self.runs if self._own_steps else self.step) % self._log_frequency
    if self.runs == 1 and logs:
      # The first step waits for the shuffling queue and may take long; one
      # line shows the run is alive. It has no ": step " in it, so that what
      # reads the tutorial's lines skips it.
      print('%s: first step done in %.1f s, loss = %.2f; a progress line '
            'follows every %d steps' % (
                datetime.now(), time.time() - self._start_time, self.loss,
                self._log_frequency), flush=True)
    if logs == 0:
      now = time.time()
      steps = (self.runs - self._start_runs if self._own_steps
               else self.step - self._start_step)
      sec_per_batch = (now - self._start_time) / max(steps, 1)
      epoch = ''
      if self._examples_per_epoch:
        epoch = ', epoch %.1f' % (self.step * self._examples_per_global_step /
                                  self._examples_per_epoch)
      print('%s: step %d, loss = %.2f (%.1f examples/sec; %.3f sec/batch)%s'
            % (datetime.now(), self.step, self.loss,
               self._examples_per_step / sec_per_batch, sec_per_batch, epoch),
            flush=True)
      self._start_time, self._start_step = now, self.step
      self._start_runs = self.runs


class _NanLossHook(tf.train.NanTensorHook):
  """NanTensorHook without its own log line: the trainer says it in one."""

  def after_run(self, run_context, run_values):
    if math.isnan(float(run_values.results)):
      raise tf.train.NanLossDuringTrainingError


@contextlib.contextmanager
def new_graph(seed=None):
  """A new default graph; seed, when given, is its graph-level random seed.

  The same seed, data and flags then give the same initial weights.
  """
  with tf.Graph().as_default() as graph:
    if seed is not None:
      tf.set_random_seed(seed)
    yield graph


def _saved_step(checkpoint):
  """The global step that checkpoint holds (what resuming would start from)."""
  return int(tf.train.load_variable(checkpoint,
                                    tf.train.get_global_step().op.name))


def _restore_for_other_workers(master, config, saver, checkpoint):
  """Restores checkpoint into a cluster whose variables are uninitialised.

  The other workers wait for the chief to initialise the model; without it
  they would give up after --worker_timeout_secs, instead of finding the
  step at --max_steps and stopping too. A plain session writes nothing.
  """
  with tf.Session(master, config=config) as sess:
    if len(sess.run(tf.report_uninitialized_variables(
        tf.global_variables()))):
      saver.restore(sess, checkpoint)


@contextlib.contextmanager
def _graph_written_once(logdir):
  """Makes the session's hooks write the graph into logdir's events once.

  The hooks share the FileWriter that FileWriterCache keeps per directory.
  The cache creates it with the default graph, so it writes graph_def and
  meta_graph_def as soon as the first hook asks for it (before the scaffold
  has added its ops), and CheckpointSaverHook then writes the finished graph
  and its saver again, so TensorBoard warns of more than one graph. A writer
  made here without a graph, put in the cache first, leaves the hook's
  complete copy as the only one. (FileWriterCache has no public way to put
  one in; without its _cache the graph is just written twice, as before.)
  """
  cache = tf.summary.FileWriterCache
  if not isinstance(getattr(cache, '_cache', None), dict):
    yield
    return
  writer = tf.summary.FileWriter(logdir)
  with cache._lock:  # pylint: disable=protected-access
    cache._cache[logdir] = writer  # pylint: disable=protected-access
  try:
    yield
  finally:
    with cache._lock:  # pylint: disable=protected-access
      if cache._cache.get(logdir) is writer:  # pylint: disable=protected-access
        del cache._cache[logdir]  # pylint: disable=protected-access
    writer.close()


def run_training(train_op, total_loss, examples_per_step, options, config,
                 hooks=(), master='', is_chief=True, scaffold=None,
                 examples_per_epoch=None, examples_per_global_step=None,
                 start_line=None, **session_kwargs):
  """Runs train_op until options.max_steps, checkpointing into options.train_dir.

  Shared by the single-device, multi-device and distributed scripts. Resumes
  from the latest checkpoint, logs every options.log_frequency steps, stops
  cleanly on SIGINT or SIGTERM with a final checkpoint, and reports a NaN
  loss as a UserError. In a cluster, master is this worker's server target,
  and only the chief initialises, checkpoints and writes summaries; scaffold
  may bring another saver, and session_kwargs are more
  MonitoredTrainingSession arguments (max_wait_secs, ...). start_line, when
  given, is printed once it is sure that training starts.
  examples_per_epoch, when given, adds the epoch to the progress lines;
  examples_per_global_step (default examples_per_step) is how many
  examples one global step trains on.

  A chief whose latest checkpoint is already at options.max_steps or past it
  says so and returns at once: it writes neither events nor checkpoints.
  Returns the logger hook: .runs is the number of steps this process ran,
  .step the last global step it saw.
  """
  logger = _LoggerHook(total_loss, examples_per_step, options.log_frequency,
                       own_steps=bool(master),
                       examples_per_epoch=examples_per_epoch,
                       examples_per_global_step=examples_per_global_step)
  stopper = stopping.StopOnSignalHook()
  all_hooks = [tf.train.StopAtStepHook(last_step=options.max_steps),
               logger, stopper, _NanLossHook(total_loss)]
  all_hooks.extend(hooks)
  save_secs = (None if options.save_checkpoint_steps
               else options.save_checkpoint_secs)
  global stopped_by
  stopped_by = None
  resolution = (resuming.check_resumable(options.train_dir, options.record)
                if is_chief else None)
  resume_from = resolution and resolution.path
  if resume_from:
    # Read from the checkpoint the session would restore, before the session
    # exists: creating it already writes an event file (graph, summaries)
    # and a checkpoint, which a start with nothing to do should not leave.
    saved_step = _saved_step(resume_from)
    if saved_step >= options.max_steps:
      print('--train_dir=%s is already at step %d, --max_steps=%d: nothing '
            'to train' % (options.train_dir, saved_step, options.max_steps),
            flush=True)
      if master and scaffold and scaffold.saver:
        _restore_for_other_workers(master, config, scaffold.saver,
                                   resume_from)
      logger.step = saved_step
      return logger
  written = (resuming.prepare_resume(options.train_dir, resolution,
                                     options.record)
             if is_chief else [])
  if resume_from:
    print('Resuming from %s' % resume_from, flush=True)
  if start_line:
    print(start_line, flush=True)
  # Only the chief writes events; another worker must not leave any file.
  events = (_graph_written_once(options.train_dir) if is_chief
            else contextlib.nullcontext())
  stopper.install()
  timed_out = False
  # What a session's start writes besides checkpoints (graph.pbtxt too).
  events_pattern = os.path.join(glob.escape(options.train_dir),
                                'events.out.tfevents.*')
  events_before = set(glob.glob(events_pattern))
  graph_file = os.path.join(options.train_dir, 'graph.pbtxt')
  if not os.path.exists(graph_file):
    written.append(graph_file)
  try:
    with events, tf.train.MonitoredTrainingSession(
        master=master,
        is_chief=is_chief,
        scaffold=scaffold or tf.train.Scaffold(
            saver=checkpoint_saver.checkpoint_saver(
                options.keep_checkpoints)),
        checkpoint_dir=options.train_dir,
        hooks=all_hooks,
        save_checkpoint_secs=save_secs,
        save_checkpoint_steps=options.save_checkpoint_steps,
        save_summaries_steps=options.save_summaries_steps,
        config=config,
        **session_kwargs) as mon_sess:
      # StopAtStepHook only checks after a step, so a directory already at
      # max_steps (or max_steps=0) would otherwise train one step more.
      # A local step waits for its input at most input_timeout_secs; in a
      # cluster the trainer bounds its steps itself.
      run_options = (None if master else tf.RunOptions(
          timeout_in_ms=int(options.input_timeout_secs * 1000)))
      if logger.step < options.max_steps:
        while not mon_sess.should_stop():
          try:
            mon_sess.run(train_op, options=run_options)
          except tf.errors.DeadlineExceededError:
            if master:
              raise
            # The session itself is sound: leaving it normally saves a
            # final checkpoint at the step reached.
            timed_out = True
            break
  except tf.train.NanLossDuringTrainingError:
    raise UserError(
        'loss is NaN at step %s (loss = %s); training stopped, the last '
        'checkpoint in %s is kept' % (logger.step, logger.loss,
                                      options.train_dir))
  except tf.errors.DeadlineExceededError:
    if master:
      raise
    raise UserError(
        'no training step finished within %d s (--input_timeout_secs) after '
        'step %s: the input produced nothing (are the training files still '
        'there and non-empty?); the last checkpoint in %s is kept'
        % (options.input_timeout_secs, logger.step, options.train_dir))
  except tf.errors.NotFoundError as e:
    # A training file removed while training: its reader fails to reopen it
    # and the queue runner's error comes out of the session's close.
    if master:
      raise
    raise UserError(
        'training stopped at step %s: %s (was a training file removed?); the '
        'last checkpoint in %s is kept' % (
            logger.step, e.message.strip().splitlines()[0],
            options.train_dir))
  except UserError:
    # A save failed (a full disk) before any step: the events file this
    # start wrote holds nothing but the graph, and each retry adds one.
    if is_chief and not logger.runs:
      for path in written + sorted(set(glob.glob(events_pattern)) -
                                   events_before):
        try:
          os.remove(path)
        except OSError:
          pass
    raise
  except tf.errors.InvalidArgumentError as e:
    # A NaN reaching a histogram summary fails its step before the loss check.
    if 'Nan in summary histogram' not in e.message:
      raise
    raise UserError(
        'NaN at step %s (%s); training stopped, the last checkpoint in %s is '
        'kept' % (logger.step + 1, e.message[e.message.find('Nan in summary'):]
                  .splitlines()[0], options.train_dir))
  finally:
    stopper.uninstall()
  if timed_out:
    raise UserError(
        'no training step finished within %d s (--input_timeout_secs) after '
        'step %s: the input produced nothing (are the training files still '
        'there and non-empty?); checkpoint saved at step %s in %s'
        % (options.input_timeout_secs, logger.step, logger.step,
           options.train_dir))
  if stopper.signal_name:
    stopped_by = stopper.signal_name
    print('Stopped by %s at step %s%s'
          % (stopper.signal_name, logger.step,
             '; checkpoint saved in %s' % options.train_dir if is_chief
             else ''), flush=True)
  elif is_chief:
    # Else a finished run ends silently, unlike one stopped by a signal.
    # Not "Done: step N": ': step ' marks the tutorial's progress lines,
    # which log parsers (the tests' too) match.
    print('Done at step %s; checkpoint saved in %s'
          % (logger.step, options.train_dir), flush=True)
  return logger
