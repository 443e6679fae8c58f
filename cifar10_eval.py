"""Evaluates the checkpoints that cifar10_train.py writes: precision @ 1.

    python cifar10_eval.py --checkpoint_dir=/tmp/cifar10_train --run_once

Without --run_once it watches --checkpoint_dir and evaluates each new
checkpoint once, every --eval_interval_secs, beside a running training.
The model runs with the moving-average (shadow) values of its weights, as in
the tutorial (--moving_average=false: the raw weights). Unlike the
original, an evaluation is exact: each of the first min(--num_examples,
examples in the files) examples is counted exactly once.

--checkpoint_paths=a,b,... evaluates an ensemble once: the average of its
members' softmax outputs, reported beside each member's precision.
--snapshots does so with the snapshot-<step> checkpoints that training with
--lr_schedule=cosine_restarts keeps in --checkpoint_dir.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

from datetime import datetime
import os
import signal
import time

from absl import flags
import numpy as np

import cli  # before anything imports TensorFlow: it quiets its start-up
import checkpoints
import directories
import cifar10
from compat import tf
from errors import UserError
import preprocessing
import schedules

FLAGS = flags.FLAGS
cli.define_flags('data', 'download', 'split', 'batch', 'model', 'checkpoint',
                 'preprocessing', 'session')
flags.DEFINE_string('eval_dir', '/tmp/cifar10_eval',
                    'Directory where to write event logs.')
flags.DEFINE_enum('eval_data', 'test', ['test', 'train_eval', 'validation'],
                  '"test" (the test file), "train_eval" (the training '
                  'records) or "validation" (the last --validation_examples '
                  'training records, held out of training).')
flags.DEFINE_integer('eval_interval_secs', 300,
                     'How often to look for a new checkpoint.', lower_bound=0)
flags.DEFINE_integer('num_examples', 10000, 'Number of examples to run.',
                     lower_bound=1)
flags.DEFINE_boolean('run_once', False,
                     'Evaluate the latest checkpoint once and exit.')
flags.DEFINE_boolean('moving_average', True,
                     'Evaluate the moving averages of the weights, as the '
                     'tutorial does; false evaluates the raw weights.')
flags.DEFINE_list('checkpoint_paths', [],
                  'Comma-separated checkpoints (or directories, for their '
                  'latest) to evaluate once as an ensemble that averages '
                  'their softmax outputs; replaces --checkpoint_dir.')
flags.DEFINE_boolean('snapshots', False,
                     'Evaluate once, as an ensemble (see --checkpoint_paths), '
                     'the snapshot-<step> checkpoints that '
                     '--lr_schedule=cosine_restarts kept in --checkpoint_dir.')


def _rearm_sigint():
  """Gives SIGINT back to Python, so that Ctrl-C raises KeyboardInterrupt.

  TensorFlow 2.x's session runtime can take SIGINT over at the C level, and
  Ctrl-C then no longer stopped a watching evaluator.
  """
  signal.signal(signal.SIGINT, signal.default_int_handler)


class Evaluator(object):
  """The evaluation graph, built once and run for each checkpoint.

  split (a datasets.Split) names the records; the first num_examples of
  them are each counted once. model_options are inference()'s keyword
  arguments; config is the sessions' ConfigProto. preprocessing_mode is the
  model's (one of preprocessing.MODES); a mean comes from the checkpoint.
  """

  def __init__(self, split, num_examples, config=None,
               batch_size=cifar10.BATCH_SIZE, use_fp16=False,
               model_options=None, moving_average=True,
               preprocessing_mode=preprocessing.STANDARDIZE):
    self.num_examples = num_examples
    self.moving_average = moving_average
    self.preprocessing_mode = preprocessing_mode
    self.config = config
    self.graph = tf.Graph()
    with self.graph.as_default():
      self.global_step = tf.train.get_or_create_global_step()
      mean = preprocessing.mean_variable(preprocessing_mode)
      # The split, not eval_data, names the records.
      images, labels = cifar10.inputs(
          eval_data=True, batch_size=batch_size,
          use_fp16=use_fp16, split=split, num_epochs=1, mean=mean)
      logits = tf.cast(cifar10.inference(images, train=False,
                                         **(model_options or {})),
                       tf.float32)
      self.correct = tf.nn.in_top_k(logits, labels, 1)
      self.labels = labels
      self.probabilities = tf.nn.softmax(logits)
      self.summary_op = tf.summary.merge_all()
      self.shadow_vars = cifar10.variables_to_restore()
      self.raw_vars = {v.op.name: v for v in tf.global_variables()}
      self.local_init = tf.local_variables_initializer()

  def _var_list_for(self, checkpoint):
    """{name in checkpoint: variable}: its shadow values, or its raw weights.

    Raises UserError naming the first variable the checkpoint lacks or holds
    in another shape, and when the checkpoint cannot be read at all. Values
    of another dtype (--use_fp16, a float global_step) are cast.
    """
    var_list = checkpoints.checkpoint_var_list(
        checkpoint, self.shadow_vars, self.raw_vars, self.moving_average,
        cast=True)
    preprocessing.check_checkpoint(checkpoint, self.preprocessing_mode)
    return var_list

  def _run_epoch(self, checkpoint, fetches, first_fetches=None):
    """Yields the global step, then fetches' values batch by batch.

    Each batch is cut to the examples still wanted, so that every one of
    the first num_examples examples comes out exactly once. first_fetches,
    when given, replaces fetches for the first batch.
    """
    var_list = self._var_list_for(checkpoint)
    with tf.Session(graph=self.graph, config=self.config) as sess:
      checkpoints.restore(sess, checkpoint, var_list)
      sess.run(self.local_init)
      yield int(sess.run(self.global_step))
      coord = tf.train.Coordinator()
      threads = tf.train.start_queue_runners(sess=sess, coord=coord)
      _rearm_sigint()
      try:
        total = 0
        while total < self.num_examples:
          values = sess.run(first_fetches if first_fetches and not total
                            else fetches)
          keep = self.num_examples - total
          values = [v[:keep] if isinstance(v, np.ndarray) else v
                    for v in values]
          total += len(values[0])
          yield values
      except tf.errors.OutOfRangeError:
        pass  # every record was read once: the epoch is over
      finally:
        coord.request_stop()
        coord.join(threads, stop_grace_period_secs=10)

  def evaluate(self, checkpoint, writer):
    """Evaluates one checkpoint; returns (correct, total, global_step)."""
    batches = self._run_epoch(checkpoint, [self.correct],
                              [self.correct, self.summary_op])
    step = next(batches)
    correct = total = 0
    summary = None
    for values in batches:
      correct += int(np.sum(values[0]))
      total += len(values[0])
      summary = summary or values[1]
    precision = correct / total
    print('%s: precision @ 1 = %.3f (%d/%d correct, global step %d, %s)'
          % (datetime.now(), precision, correct, total, step,
             os.path.basename(checkpoint)), flush=True)
    event = tf.Summary()
    event.ParseFromString(summary)
    event.value.add(tag='Precision @ 1', simple_value=precision)
    writer.add_summary(event, step)
    writer.flush()
    return correct, total, step

  def softmax_outputs(self, checkpoint):
    """Returns (probabilities [n, classes], labels [n], global step)."""
    batches = self._run_epoch(checkpoint, [self.probabilities, self.labels])
    step = next(batches)
    values = list(batches)
    return (np.concatenate([v[0] for v in values]),
            np.concatenate([v[1] for v in values]), step)


def count_correct(probabilities, labels):
  """Examples whose label scores highest; ties count, as in tf.nn.in_top_k."""
  label_scores = probabilities[np.arange(len(labels)), labels]
  return int(np.sum(label_scores >= probabilities.max(axis=1)))


def resolve_checkpoint(path):
  """path itself, or the latest checkpoint when path is a directory."""
  if os.path.isdir(path):
    resolution = checkpoints.resolve(path)
    if resolution.path is None:
      raise UserError('--checkpoint_paths: no checkpoint in %s%s' % (
          path, '; ' + resolution.problem if resolution.problem else ''))
    if resolution.note:
      print('Note: %s' % resolution.note, flush=True)
    return resolution.path
  checkpoints.read_checkpoint(path)
  return path


def evaluate_ensemble(evaluator, paths):
  """Evaluates each checkpoint, then the average of their softmax outputs.

  Returns the ensemble's (correct, total).
  """
  checkpoints = [resolve_checkpoint(path) for path in paths]
  summed = None
  for checkpoint in checkpoints:
    probabilities, labels, step = evaluator.softmax_outputs(checkpoint)
    correct = count_correct(probabilities, labels)
    print('%s: precision @ 1 = %.3f (%d/%d correct, global step %d, %s)'
          % (datetime.now(), correct / len(labels), correct, len(labels), step,
             checkpoint), flush=True)
    summed = probabilities if summed is None else summed + probabilities
  correct = count_correct(summed / len(checkpoints), labels)
  print('%s: ensemble of %d checkpoints: precision @ 1 = %.3f (%d/%d correct)'
        % (datetime.now(), len(checkpoints), correct / len(labels), correct,
           len(labels)), flush=True)
  return correct, len(labels)


def _still_being_written(resolution, unreadable_once):
  """Whether a watcher should look again before reading resolution's pick.

  A checkpoint that the state file does not name may be a save still being
  written beside the evaluator (the first save has no state file yet): the
  first time it does not read, the watcher looks again at its next look;
  the second time, the evaluation reports it unreadable.
  """
  if (FLAGS.run_once or not resolution.note or
      resolution.path == unreadable_once):
    return False
  try:
    checkpoints.read_checkpoint(resolution.path)
  except UserError:
    return True
  return False


def evaluate(split):
  """Evaluates the latest checkpoint once, or each new one as it appears."""
  evaluator = Evaluator(split, min(FLAGS.num_examples, split.num_examples),
                        cli.session_config(), FLAGS.batch_size,
                        FLAGS.use_fp16, cli.model_options(train=False),
                        FLAGS.moving_average, FLAGS.preprocessing)
  if FLAGS.snapshots:
    paths = schedules.snapshot_paths(FLAGS.checkpoint_dir)
    if not paths:
      raise UserError('--snapshots: no snapshot-<step> checkpoint in '
                      '--checkpoint_dir=%s (they come from training with '
                      '--lr_schedule=cosine_restarts)' % FLAGS.checkpoint_dir)
    evaluate_ensemble(evaluator, paths)
    return
  if FLAGS.checkpoint_paths:
    evaluate_ensemble(evaluator, FLAGS.checkpoint_paths)
    return
  writer = tf.summary.FileWriter(FLAGS.eval_dir, evaluator.graph)
  last_evaluated = None
  said_waiting = said_next = False
  last_note = unreadable_once = None
  try:
    while True:
      resolution = checkpoints.resolve(FLAGS.checkpoint_dir)
      checkpoint = resolution.path
      if checkpoint is None:
        message = 'No checkpoint file found in --checkpoint_dir=%s%s' % (
            FLAGS.checkpoint_dir,
            '; ' + resolution.problem if resolution.problem else '')
        if FLAGS.run_once:
          raise UserError(message)
        if not said_waiting:
          print(message + '; waiting for one.', flush=True)
          said_waiting = True
      elif checkpoint != last_evaluated and not _still_being_written(
          resolution, unreadable_once):
        if resolution.note and resolution.note != last_note:
          print('Note: %s' % resolution.note, flush=True)
        last_note = resolution.note
        last_evaluated = checkpoint
        try:
          evaluator.evaluate(checkpoint, writer)
        except UserError as e:
          if FLAGS.run_once:
            raise
          print('Skipping: %s' % e, flush=True)
      elif checkpoint != last_evaluated:
        unreadable_once = checkpoint
      if FLAGS.run_once:
        return
      if not said_next:
        # Otherwise a watching evaluator looks stuck until its next look,
        # minutes later by default; once is enough to know it is alive.
        print('Next look in %d s (--eval_interval_secs); Ctrl-C stops.'
              % FLAGS.eval_interval_secs, flush=True)
        said_next = True
      _rearm_sigint()
      time.sleep(FLAGS.eval_interval_secs)
  except (KeyboardInterrupt, SystemError) as e:
    # Ctrl-C landing inside one of TensorFlow 1.15's SWIG calls (reading the
    # `checkpoint` file) comes out as a SystemError caused by the interrupt.
    if not isinstance(e, KeyboardInterrupt) and not isinstance(
        e.__cause__, KeyboardInterrupt):
      raise
    print('Interrupted; stopping.', flush=True)
  finally:
    writer.close()


def main(argv=None):
  del argv
  cli.maybe_download_and_extract()
  # Bad data fails before --eval_dir is made.
  split = cli.data_split(FLAGS.eval_data)
  directories.prepare_dir('--eval_dir', FLAGS.eval_dir)
  evaluate(split)


if __name__ == '__main__':
  cli.run(main)
