"""Learning-rate schedules beyond the tutorial's staircase (--lr_schedule).

    step             the tutorial's: times --learning_rate_decay_factor
                     every --num_epochs_per_decay epochs (the default)
    plateau          the staircase, times --learning_rate_decay_factor each
                     time the validation precision has not improved for
                     --plateau_patience evaluations (PlateauHook)
    cosine_restarts  SGDR: from --learning_rate down a cosine to zero every
                     --restart_epochs epochs, then again from the top; the
                     weights at the end of each cycle are kept as
                     snapshot-<step> (SnapshotHook), an ensemble for
                     cifar10_eval.py --snapshots

The plateau schedule's state (the best precision, the evaluations since it,
the rate's multiplier) lives in non-trainable variables under `plateau/`,
which the checkpoints save: a resumed run continues the schedule where it
stopped.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import collections
from datetime import datetime
import glob
import os
import re

import numpy as np

from cifar10lib.base.compat import tf

STEP = 'step'
PLATEAU = 'plateau'
COSINE_RESTARTS = 'cosine_restarts'
RESTART_EPOCHS = 10.0             # epochs per cosine cycle
PLATEAU_EVAL_STEPS = 1000         # steps between validation evaluations
PLATEAU_PATIENCE = 5              # evaluations without improvement per decay
PLATEAU_SCOPE = 'plateau'
PRECISION_TAG = 'validation/Precision @ 1'
SNAPSHOT_PREFIX = 'snapshot'
# Its own state file, so that the main saver's `checkpoint` never names a
# snapshot, and its rotation never sees one.
SNAPSHOT_STATE = 'snapshots'


class Schedule(collections.namedtuple('Schedule', [
    'name', 'restart_epochs', 'eval_steps', 'patience'])):
  """A learning-rate schedule: its name and the options of that one.

  The factor of each decay, the staircase's and the plateau's alike, is the
  recipe's learning_rate_decay_factor.
  """


TUTORIAL_SCHEDULE = Schedule(STEP, RESTART_EPOCHS, PLATEAU_EVAL_STEPS,
                             PLATEAU_PATIENCE)


def cycle_steps(num_batches_per_epoch, schedule):
  """The steps of one cosine cycle (at least one)."""
  return max(int(num_batches_per_epoch * schedule.restart_epochs), 1)


def cosine_restarts(initial_rate, global_step, steps):
  """initial_rate down a cosine to zero over steps, restarting every steps."""
  return tf.train.cosine_decay_restarts(initial_rate, global_step, steps,
                                        t_mul=1.0, m_mul=1.0, alpha=0.0)


class PlateauState(collections.namedtuple('PlateauState', [
    'best', 'since', 'multiplier', 'evaluated_step'])):
  """The plateau schedule's variables."""


def _staircase(global_step, num_batches_per_epoch, recipe):
  """The tutorial's: times the decay factor every num_epochs_per_decay."""
  decay_steps = max(int(num_batches_per_epoch * recipe.num_epochs_per_decay),
                    1)
  return tf.train.exponential_decay(recipe.learning_rate, global_step,
                                    decay_steps,
                                    recipe.learning_rate_decay_factor,
                                    staircase=True)


def _plateau(global_step, num_batches_per_epoch, recipe, schedule):
  """The staircase times the multiplier that PlateauHook lowers."""
  del schedule
  return (_staircase(global_step, num_batches_per_epoch, recipe) *
          plateau_variables().multiplier)


def _cosine_restarts(global_step, num_batches_per_epoch, recipe, schedule):
  return cosine_restarts(recipe.learning_rate, global_step,
                         cycle_steps(num_batches_per_epoch, schedule))


# --lr_schedule's choices: name -> the rate as a function of (global step,
# batches per epoch, cifar10.Recipe, Schedule).
RATES = {
    STEP: lambda step, batches, recipe, schedule: _staircase(step, batches,
                                                             recipe),
    PLATEAU: _plateau,
    COSINE_RESTARTS: _cosine_restarts,
}


def learning_rate(global_step, num_batches_per_epoch, recipe, schedule):
  """The learning rate at global_step of recipe under schedule."""
  return RATES[schedule.name](global_step, num_batches_per_epoch, recipe,
                              schedule)


def plateau_variables():
  """(best precision, evaluations since it, rate multiplier, step evaluated).

  Made once. Not trainable: no gradient and no moving average touch them,
  but the checkpoints save them.
  """
  def make(name, value, dtype):
    return tf.get_variable(name, dtype=dtype,
                           initializer=tf.constant(value, dtype),
                           trainable=False)
  with tf.variable_scope(PLATEAU_SCOPE, reuse=tf.AUTO_REUSE):
    return PlateauState(make('best_precision', -1.0, tf.float32),
                        make('evaluations_since_best', 0, tf.int64),
                        make('multiplier', 1.0, tf.float32),
                        make('evaluated_step', 0, tf.int64))


class PlateauHook(tf.train.SessionRunHook):
  """Evaluates the held-out records every schedule.eval_steps steps.

  It logs the precision (a console line and the TensorBoard scalar
  PRECISION_TAG in train_dir) and multiplies the rate by factor (the
  recipe's learning_rate_decay_factor) after schedule.patience evaluations
  in a row without a better precision than the best so far. The evaluation of step N runs before step N + 1
  (or at the end of a run stopping at N), and the state records that step: a
  run resumed from a checkpoint saved before that evaluation does it again,
  on the same weights, and the schedule goes on exactly as without the stop.
  validator.correct(session) returns (correct, total).
  """

  def __init__(self, validator, schedule, factor, train_dir):
    self._validator = validator
    self._schedule = schedule
    self._factor = factor
    self._train_dir = train_dir

  def begin(self):
    self._global_step = tf.train.get_global_step()
    self._state = plateau_variables()
    self._feeds = [tf.placeholder(v.dtype.base_dtype, []) for v in self._state]
    self._assign = tf.group(*[tf.assign(v, p)
                              for v, p in zip(self._state, self._feeds)])

  def _maybe_evaluate(self, session):
    step, evaluated = session.run([self._global_step,
                                    self._state.evaluated_step])
    if step == 0 or step % self._schedule.eval_steps or step <= evaluated:
      return
    correct, total = self._validator.correct(session)
    precision = correct / total
    best, since, multiplier, _ = session.run(self._state)
    note = ''
    # Compared as stored, in float32: a precision equal to the best is no
    # improvement, whichever way float32 rounded the best.
    if np.float32(precision) > best:
      best, since = precision, 0
    else:
      since += 1
      if since >= self._schedule.patience:
        multiplier *= self._factor
        since = 0
        note = '; no improvement in %d evaluations: learning rate x %g' % (
            self._schedule.patience, self._factor)
    session.run(self._assign, dict(zip(self._feeds,
                                       [best, since, multiplier, step])))
    print('%s: step %d, validation precision @ 1 = %.3f (%d/%d correct, '
          'best %.3f)%s' % (datetime.now(), step, precision, correct, total,
                            best, note), flush=True)
    writer = tf.summary.FileWriterCache.get(self._train_dir)
    writer.add_summary(tf.Summary(value=[tf.Summary.Value(
        tag=PRECISION_TAG, simple_value=precision)]), step)
    writer.flush()

  def before_run(self, run_context):
    self._maybe_evaluate(run_context.session)

  def end(self, session):
    self._maybe_evaluate(session)


class SnapshotHook(tf.train.SessionRunHook):
  """Saves train_dir/snapshot-<step> at the end of each cycle of every steps.

  Its own saver keeps every snapshot (the main one keeps the last five
  checkpoints) and records them in train_dir/snapshots, not `checkpoint`.
  """

  def __init__(self, train_dir, every_steps):
    self._prefix = os.path.join(train_dir, SNAPSHOT_PREFIX)
    self._every_steps = every_steps

  def begin(self):
    self._global_step = tf.train.get_global_step()
    # Sharded and with relative paths, as checkpoint_saver.checkpoint_saver().
    self._saver = tf.train.Saver(sharded=True, allow_empty=True,
                                 save_relative_paths=True, max_to_keep=0)

  def after_run(self, run_context, run_values):
    step = int(run_context.session.run(self._global_step))
    if step % self._every_steps == 0:
      path = self._saver.save(run_context.session, self._prefix, step,
                              latest_filename=SNAPSHOT_STATE,
                              write_meta_graph=False)
      print('%s: step %d, end of a learning-rate cycle: kept %s'
            % (datetime.now(), step, path), flush=True)


def training_hooks(schedule, recipe, train_dir, num_batches_per_epoch,
                   validator=None):
  """The hooks schedule needs in the training loop (training.run_training).

  plateau: a PlateauHook evaluating validator (validation.Validator);
  cosine_restarts: a SnapshotHook at the end of each cycle; step: none.
  """
  if schedule.name == PLATEAU:
    return [PlateauHook(validator, schedule,
                        recipe.learning_rate_decay_factor, train_dir)]
  if schedule.name == COSINE_RESTARTS:
    return [SnapshotHook(train_dir, cycle_steps(num_batches_per_epoch,
                                                schedule))]
  return []


def snapshot_paths(train_dir):
  """The snapshot-<step> checkpoints of train_dir, by step."""
  found = []
  for index in glob.glob(os.path.join(train_dir, SNAPSHOT_PREFIX + '-*.index')):
    match = re.search(r'-([0-9]+)\.index$', index)
    if match:
      found.append((int(match.group(1)), index[:-len('.index')]))
  return [path for _, path in sorted(found)]
