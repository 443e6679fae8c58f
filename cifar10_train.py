"""Trains the CIFAR-10 model on one device.

    python cifar10_train.py --train_dir=/tmp/cifar10_train --batch_size 128

Checkpoints and summaries go to --train_dir, where cifar10_eval.py and
TensorBoard pick them up. Unlike the original tutorial, --train_dir is never
deleted: a second start resumes from its latest checkpoint, and Ctrl-C or
SIGTERM stops after the current step with a checkpoint at that step.

`run_training` is the training loop shared by cifar10_multi_gpu_train.py.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

from datetime import datetime
import os
import signal
import time

from absl import flags

import cifar10
from cifar10 import tf

FLAGS = flags.FLAGS
# --help lists the flags of the main module only; these are ours too.
flags.adopt_module_key_flags(cifar10)
flags.DEFINE_string('train_dir', '/tmp/cifar10_train',
                    'Directory where to write event logs and checkpoints; '
                    'training resumes from the latest checkpoint found there.')
flags.DEFINE_integer('max_steps', 1000000, 'Number of batches to run.',
                     lower_bound=0)
flags.DEFINE_boolean('log_device_placement', False,
                     'Whether to log device placement.')
flags.DEFINE_integer('log_frequency', 10,
                     'How often (in steps) to log results to the console.',
                     lower_bound=1)
flags.DEFINE_integer('save_checkpoint_secs', 600,
                     'Seconds between periodic checkpoints.', lower_bound=1)
flags.DEFINE_integer('save_checkpoint_steps', None,
                     'Steps between periodic checkpoints; replaces '
                     '--save_checkpoint_secs when set.', lower_bound=1)
flags.DEFINE_integer('save_summaries_steps', 100,
                     'Steps between summaries written for TensorBoard.',
                     lower_bound=1)
flags.DEFINE_integer('seed', None,
                     'Graph-level random seed: the same seed, data and flags '
                     'give the same initial weights.')

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _LoggerHook(tf.train.SessionRunHook):
  """Prints the tutorial's progress line every --log_frequency steps.

  It also remembers the last step and loss, so that a NaN can be reported
  with the step it happened at.
  """

  def __init__(self, total_loss, examples_per_step, log_frequency,
               own_steps=False):
    self._loss = total_loss
    self._examples_per_step = examples_per_step
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
    if (self.runs if self._own_steps else self.step) % self._log_frequency == 0:
      now = time.time()
      steps = (self.runs - self._start_runs if self._own_steps
               else self.step - self._start_step)
      sec_per_batch = (now - self._start_time) / max(steps, 1)
      print('%s: step %d, loss = %.2f (%.1f examples/sec; %.3f sec/batch)'
            % (datetime.now(), self.step, self.loss,
               self._examples_per_step / sec_per_batch, sec_per_batch),
            flush=True)
      self._start_time, self._start_step = now, self.step
      self._start_runs = self.runs


class _StopOnSignalHook(tf.train.SessionRunHook):
  """Turns SIGINT and SIGTERM into a clean stop after the current step.

  The session then closes normally, and its checkpoint saver writes a final
  checkpoint at the step reached.
  """

  def __init__(self):
    self.signal_name = None
    self._previous = {}

  def _handle(self, signum, frame):
    del frame
    self.signal_name = signal.Signals(signum).name

  def install(self):
    for sig in STOP_SIGNALS:
      self._previous[sig] = signal.signal(sig, self._handle)

  def uninstall(self):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)

  def after_run(self, run_context, run_values):
    if self.signal_name:
      run_context.request_stop()


def prepare_train_dir(train_dir):
  """Creates train_dir if needed and checks that training can resume there.

  Raises UserError when the directory cannot be written, or when its latest
  checkpoint is unreadable (which is then left untouched).
  """
  try:
    if not os.path.isdir(train_dir):
      os.makedirs(train_dir)
  except OSError as e:
    raise cifar10.UserError('--train_dir=%s: cannot create it: %s'
                            % (train_dir, e.strerror))
  if not os.access(train_dir, os.W_OK | os.X_OK):
    raise cifar10.UserError('--train_dir=%s: not writable' % train_dir)
  latest = tf.train.latest_checkpoint(train_dir)
  if latest:
    try:
      cifar10.read_checkpoint(latest)
    except cifar10.UserError as e:
      raise cifar10.UserError(
          '%s; refusing to resume from it (nothing was changed): move it '
          'away to resume from an earlier one, or use another --train_dir' % e)
    print('Resuming from %s' % latest, flush=True)


def session_config(**kwargs):
  """The training session's settings: cifar10's thread and XLA flags."""
  return cifar10.session_config(
      log_device_placement=FLAGS.log_device_placement, **kwargs)


def checkpoint_saver():
  """The session's usual sharded saver, but with relative checkpoint paths.

  The `checkpoint` file then names its checkpoints relative to --train_dir,
  so a moved or copied directory resumes from its own checkpoints rather
  than from (or, once gone, without) those of its old location.
  """
  return tf.train.Saver(sharded=True, allow_empty=True,
                        save_relative_paths=True)


def _check_resumable(is_chief):
  """Raises UserError when --train_dir's checkpoint cannot restore this graph.

  Without it, resuming a directory trained with other model flags (or by
  the other trainer) ends in TensorFlow's NotFoundError traceback.
  """
  latest = tf.train.latest_checkpoint(FLAGS.train_dir)
  if not (latest and is_chief):
    return
  variables = {v.op.name: v for v in tf.global_variables()}
  try:
    cifar10.checkpoint_var_list(latest, {}, variables, moving_average=False)
  except cifar10.UserError as e:
    raise cifar10.UserError('--train_dir=%s: cannot resume: %s; use another '
                            '--train_dir (nothing was changed)'
                            % (FLAGS.train_dir, e))


def run_training(train_op, total_loss, examples_per_step, config=None,
                 hooks=(), master='', is_chief=True, scaffold=None,
                 **session_kwargs):
  """Runs train_op until --max_steps, checkpointing into --train_dir.

  Shared by the single-device, multi-device and distributed scripts. Resumes
  from the latest checkpoint, logs every --log_frequency steps, stops cleanly
  on SIGINT or SIGTERM with a final checkpoint, and reports a NaN loss as a
  UserError. In a cluster, master is this worker's server target, and only
  the chief initialises, checkpoints and writes summaries; scaffold may
  bring another saver, and session_kwargs are more MonitoredTrainingSession
  arguments (max_wait_secs, stop_grace_period_secs, ...).
  Returns the logger hook: .runs is the number of steps this process ran,
  .step the last global step it saw.
  """
  logger = _LoggerHook(total_loss, examples_per_step, FLAGS.log_frequency,
                       own_steps=bool(master))
  stopper = _StopOnSignalHook()
  all_hooks = [tf.train.StopAtStepHook(last_step=FLAGS.max_steps),
               logger, stopper, tf.train.NanTensorHook(total_loss)]
  all_hooks.extend(hooks)
  save_secs = (None if FLAGS.save_checkpoint_steps
               else FLAGS.save_checkpoint_secs)
  _check_resumable(is_chief)
  stopper.install()
  try:
    with tf.train.MonitoredTrainingSession(
        master=master,
        is_chief=is_chief,
        scaffold=scaffold or tf.train.Scaffold(saver=checkpoint_saver()),
        checkpoint_dir=FLAGS.train_dir,
        hooks=all_hooks,
        save_checkpoint_secs=save_secs,
        save_checkpoint_steps=FLAGS.save_checkpoint_steps,
        save_summaries_steps=FLAGS.save_summaries_steps,
        config=config or session_config(),
        **session_kwargs) as mon_sess:
      # StopAtStepHook only checks after a step, so a directory already at
      # --max_steps (or --max_steps=0) would otherwise train one step more.
      if logger.step < FLAGS.max_steps:
        while not mon_sess.should_stop():
          mon_sess.run(train_op)
  except tf.train.NanLossDuringTrainingError:
    raise cifar10.UserError(
        'loss is NaN at step %s (loss = %s); training stopped, the last '
        'checkpoint in %s is kept' % (logger.step, logger.loss,
                                      FLAGS.train_dir))
  except tf.errors.InvalidArgumentError as e:
    # A NaN reaching a histogram summary fails its step before the loss check.
    if 'Nan in summary histogram' not in e.message:
      raise
    raise cifar10.UserError(
        'NaN at step %s (%s); training stopped, the last checkpoint in %s is '
        'kept' % (logger.step + 1, e.message[e.message.find('Nan in summary'):]
                  .splitlines()[0], FLAGS.train_dir))
  finally:
    stopper.uninstall()
  if stopper.signal_name:
    print('Stopped by %s at step %s%s'
          % (stopper.signal_name, logger.step,
             '; checkpoint saved in %s' % FLAGS.train_dir if is_chief else ''),
          flush=True)
  return logger


def train():
  """Builds the single-device graph and trains it."""
  with tf.Graph().as_default():
    if FLAGS.seed is not None:
      tf.set_random_seed(FLAGS.seed)
    global_step = tf.train.get_or_create_global_step()
    # The input pipeline stays on the CPU, whatever device runs the model.
    with tf.device('/cpu:0'):
      num_examples = cifar10_input_examples()
      images, labels = cifar10.distorted_inputs(
          num_examples_per_epoch=num_examples)
    logits = cifar10.inference(images)
    total_loss = cifar10.loss(logits, labels)
    train_op = cifar10.train(total_loss, global_step, num_examples)
    run_training(train_op, total_loss, FLAGS.batch_size)


def cifar10_input_examples():
  """Training examples per epoch: --data_dir's, less --validation_examples."""
  return cifar10.data_split('train')[2]


def main(argv=None):
  del argv
  cifar10.maybe_download_and_extract()
  prepare_train_dir(FLAGS.train_dir)
  train()


if __name__ == '__main__':
  cifar10.run(main)
