"""Scores checkpoints on a test or validation split: the evaluation graph.

`Evaluator` builds the graph once (cifar10.inputs in file order, the
network without dropout, the moving averages of the weights restored in
place of the weights) and runs it for each checkpoint given to it,
printing the tutorial's "precision @ 1" line and writing its summary.
`evaluate_ensemble` averages the softmax outputs of several checkpoints.
With class names (--per_class) each evaluation also reports every class's
precision @ 1 and writes them and the confusion matrix to TensorBoard.
cifar10_eval.py turns its flags into these calls.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

from datetime import datetime
import contextlib
import glob
import os
import re
import signal

import numpy as np

from cifar10lib.base.compat import tf
from cifar10lib.base.errors import UserError
from cifar10lib.checkpoints import checkpoints
from cifar10lib.checkpoints import run_record
from cifar10lib.data import preprocessing
from cifar10lib.training import cifar10


def rearm_sigint():
  """Gives SIGINT back to Python, so that Ctrl-C raises KeyboardInterrupt.

  TensorFlow 2.x's session runtime can take SIGINT over at the C level, and
  Ctrl-C then no longer stopped a watching evaluator.
  """
  signal.signal(signal.SIGINT, signal.default_int_handler)


@contextlib.contextmanager
def sigint_held():
  """Holds a Ctrl-C until the block ends, then raises its KeyboardInterrupt.

  A KeyboardInterrupt raised inside the summary writer (in its queue's put,
  between counting the event and waking the writer thread) leaves every
  later flush, and so writer.close(), waiting forever.
  """
  received = []
  signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
  try:
    yield
  finally:
    rearm_sigint()
  if received:
    raise KeyboardInterrupt


class Evaluator(object):
  """The evaluation graph, built once and run for each checkpoint.

  split (a datasets.Split) names the records; the first num_examples of
  them are each counted once. model_options are inference()'s keyword
  arguments; config is the sessions' ConfigProto. preprocessing_mode is the
  model's (one of preprocessing.MODES); a mean comes from the checkpoint.
  recorded, when given, are the options a checkpoint's directory must have
  recorded, if it has a record (run_record.py).
  full: the model sees whole 32x32 images (--augmentation=translate_flip).
  tta: the test-time augmentation level (tta_logits). class_names, when
  given, adds the per-class report (--per_class) to each evaluation.
  """

  def __init__(self, split, num_examples, config=None,
               batch_size=cifar10.BATCH_SIZE, use_fp16=False,
               model_options=None, moving_average=True,
               preprocessing_mode=preprocessing.STANDARDIZE, recorded=None,
               full=False, tta=0, class_names=None):
    self.num_examples = num_examples
    self.class_names = class_names
    self.recorded = recorded
    self.moving_average = moving_average
    self.preprocessing_mode = preprocessing_mode
    self.config = config
    self.graph = tf.Graph()
    with self.graph.as_default():
      self.global_step = tf.train.get_or_create_global_step()
      mean = preprocessing.mean_variable(preprocessing_mode, ds=split.ds)
      # The split, not eval_data, names the records.
      images, labels = cifar10.inputs(
          eval_data=True, batch_size=batch_size,
          use_fp16=use_fp16, split=split, num_epochs=1, mean=mean, full=full)
      logits = tta_logits(
          images, lambda views: tf.cast(cifar10.inference(
              views, train=False, **(model_options or {})), tf.float32), tta)
      self.correct = tf.nn.in_top_k(logits, labels, 1)
      self.labels = labels
      self.fetches = [self.correct]
      if class_names:
        self.fetches += [predictions(logits, labels, self.correct), labels]
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
    # Last: the variables say more, where they differ.
    if self.recorded is not None:
      run_record.check(os.path.dirname(checkpoint) or '.', self.recorded)
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
      rearm_sigint()
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
    batches = self._run_epoch(checkpoint, self.fetches,
                              self.fetches + [self.summary_op])
    step = next(batches)
    correct = total = 0
    summary = None
    matrix = None
    for values in batches:
      correct += int(np.sum(values[0]))
      total += len(values[0])
      if summary is None:
        summary = values[len(self.fetches)]
      if self.class_names:
        matrix = add_to_confusion(matrix, len(self.class_names), values[2],
                                  values[1])
    precision = correct / total
    print('%s: precision @ 1 = %.3f (%d/%d correct, global step %d, %s)'
          % (datetime.now(), precision, correct, total, step,
             os.path.basename(checkpoint)), flush=True)
    event = tf.Summary()
    event.ParseFromString(summary)
    event.value.add(tag=PRECISION_TAG, simple_value=precision)
    if self.class_names:
      print('\n'.join(per_class_lines(matrix, self.class_names)), flush=True)
      add_per_class_summaries(event, matrix, self.class_names)
    with sigint_held():
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


TTA_LEVELS = (0, 1, 2)


def tta_views(images, level):
  """The views of images that level averages, with their weights.

  0: the images (weight 1); 1: they and their mirror images, 1/2 each;
  2: those two at 1/4 each, and the mirror pairs of the images shifted one
  pixel down-right and one pixel up-left (reflect-padded) at 1/8 each.
  """
  mirror = lambda x: tf.reverse(x, [2])
  if level == 0:
    return [(images, 1.0)]
  pairs = [(images, 0.5), (mirror(images), 0.5)]
  if level == 1:
    return pairs
  size = images.shape.as_list()[1:3]
  padded = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]], mode='REFLECT')
  shifted = [padded[:, :size[0], :size[1], :], padded[:, 2:, 2:, :]]
  return ([(x, w * 0.5) for x, w in pairs] +
          [(v, 0.125) for x in shifted for v in (x, mirror(x))])


def tta_logits(images, logits_fn, level):
  """The weighted mean of logits_fn's logits over level's views.

  The views run through the network as one batch (batch normalization
  uses its moving statistics in evaluation, so that each image's logits
  are its own).
  """
  views = tta_views(images, level)
  if len(views) == 1:
    return logits_fn(images)
  logits = logits_fn(tf.concat([v for v, _ in views], 0))
  count = tf.shape(images)[0]
  parts = [logits[i * count:(i + 1) * count] for i in range(len(views))]
  return tf.add_n([w * p for (_, w), p in zip(views, parts)])


PRECISION_TAG = 'Precision @ 1'
# --per_class's summaries: one scalar per class (its number and name after
# the slash), and the confusion matrix as an image.
PER_CLASS_TAG = 'Precision @ 1 per class/%s'
CONFUSION_TAG = 'Confusion matrix'
# The image's side in pixels, about: each cell is a square of pixels.
CONFUSION_PIXELS = 320


def predictions(logits, labels, correct):
  """The predicted classes: the label where it scores highest (ties count,
  as in precision @ 1), else the first class that scores highest."""
  return tf.where(correct, labels,
                  tf.cast(tf.argmax(logits, 1), labels.dtype))


def add_to_confusion(matrix, num_classes, labels, predicted):
  """matrix [true class, predicted class] (or a new one) plus these counts."""
  if matrix is None:
    matrix = np.zeros([num_classes, num_classes], np.int64)
  np.add.at(matrix, (np.asarray(labels), np.asarray(predicted)), 1)
  return matrix


def per_class_lines(matrix, names):
  """The lines --per_class prints: each class's precision @ 1 and the class
  its examples are most often taken for."""
  width = max(len(name) for name in names) + 1
  lines = []
  for c, name in enumerate(names):
    total = int(matrix[c].sum())
    line = '  %s ' % (name + ':').ljust(width)
    if not total:
      lines.append(line + 'no examples')
      continue
    line += 'precision @ 1 = %.3f (%d/%d correct)' % (
        matrix[c, c] / total, matrix[c, c], total)
    wrong = matrix[c].copy()
    wrong[c] = 0
    if wrong.any():
      other = int(np.argmax(wrong))
      line += '; most often taken for %s (%d)' % (names[other], wrong[other])
    lines.append(line)
  return lines


def confusion_image(matrix):
  """The confusion matrix as grey uint8 pixels [rows, cols, 1]: row = true
  class, column = predicted class, brightness = that share of the row."""
  totals = matrix.sum(axis=1, keepdims=True)
  shares = matrix / np.maximum(totals, 1)
  cell = max(1, CONFUSION_PIXELS // len(matrix))
  pixels = np.round(255.0 * shares).astype(np.uint8)
  return np.kron(pixels, np.ones([cell, cell], np.uint8))[:, :, None]


def add_per_class_summaries(event, matrix, names):
  """Adds each class's precision and the confusion image to event."""
  digits = len(str(len(names) - 1))
  for c, name in enumerate(names):
    total = matrix[c].sum()
    if total:  # a class without examples has no precision
      event.value.add(tag=PER_CLASS_TAG % ('%0*d %s' % (digits, c, name)),
                      simple_value=matrix[c, c] / total)
  pixels = confusion_image(matrix)
  with tf.Graph().as_default(), tf.Session() as sess:
    png = sess.run(tf.image.encode_png(tf.constant(pixels)))
  event.value.add(tag=CONFUSION_TAG, image=tf.Summary.Image(
      height=pixels.shape[0], width=pixels.shape[1], colorspace=1,
      encoded_image_string=png))


def scored_steps(eval_dir):
  """{global step: precision} of the Precision points already in eval_dir's
  event files (none when it has none, or an event file cannot be read)."""
  scored = {}
  for path in sorted(glob.glob(os.path.join(eval_dir, 'events.out.tfevents.*'))):
    try:
      for event in tf.train.summary_iterator(path):
        for value in event.summary.value:
          if value.tag == PRECISION_TAG:
            scored[event.step] = value.simple_value
    except (tf.errors.OpError, IOError):
      continue  # a truncated file: what it held before still counts
  return scored


def checkpoint_step(path):
  """The step in a checkpoint's name (model.ckpt-N), or None."""
  match = re.search(r'-(\d+)$', path)
  return int(match.group(1)) if match else None


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
  if evaluator.class_names:
    label_scores = summed[np.arange(len(labels)), labels]
    predicted = np.where(label_scores >= summed.max(axis=1), labels,
                         summed.argmax(axis=1))
    print('\n'.join(per_class_lines(add_to_confusion(
        None, len(evaluator.class_names), labels, predicted),
                                    evaluator.class_names)), flush=True)
  return correct, len(labels)
