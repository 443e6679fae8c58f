"""Evaluates the checkpoints that cifar10_train.py writes: precision @ 1.

    python cifar10_eval.py --checkpoint_dir=/tmp/cifar10_train --run_once

Without --run_once it watches --checkpoint_dir and evaluates each new
checkpoint once, every --eval_interval_secs, beside a running training.
The model runs with the moving-average (shadow) values of its weights, as in
the tutorial. Unlike the original, an evaluation is exact: each of the first
min(--num_examples, examples in the files) examples is counted exactly once.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

from datetime import datetime
import os
import time

from absl import flags
import numpy as np

import cifar10
from cifar10 import tf
import cifar10_input

FLAGS = flags.FLAGS
flags.DEFINE_string('eval_dir', '/tmp/cifar10_eval',
                    'Directory where to write event logs.')
flags.DEFINE_enum('eval_data', 'test', ['test', 'train_eval'],
                  'Either "test" (the test file) or "train_eval" (the '
                  'training files).')
flags.DEFINE_string('checkpoint_dir', '/tmp/cifar10_train',
                    'Directory where to read model checkpoints.')
flags.DEFINE_integer('eval_interval_secs', 300,
                     'How often to look for a new checkpoint.', lower_bound=0)
flags.DEFINE_integer('num_examples', 10000, 'Number of examples to run.',
                     lower_bound=1)
flags.DEFINE_boolean('run_once', False,
                     'Evaluate the latest checkpoint once and exit.')


class Evaluator(object):
  """The evaluation graph, built once and run for each checkpoint."""

  def __init__(self, filenames, num_examples):
    self.num_examples = num_examples
    self.graph = tf.Graph()
    with self.graph.as_default():
      self.global_step = tf.train.get_or_create_global_step()
      images, labels = cifar10.inputs(
          eval_data=FLAGS.eval_data == 'test', filenames=filenames,
          num_epochs=1)
      logits = cifar10.inference(images)
      self.correct = tf.nn.in_top_k(tf.cast(logits, tf.float32), labels, 1)
      self.summary_op = tf.summary.merge_all()
      self.shadow_vars = cifar10.variables_to_restore()
      self.raw_vars = {v.op.name: v for v in tf.global_variables()}
      self.local_init = tf.local_variables_initializer()

  def _saver_for(self, checkpoint):
    """A saver for what checkpoint holds: shadow values, else raw weights.

    Raises UserError naming the first variable the checkpoint lacks or holds
    in another shape, and when the checkpoint cannot be read at all.
    """
    shapes = cifar10.read_checkpoint(checkpoint)
    var_list = self.shadow_vars
    if not all(name in shapes for name in var_list):
      if all(name in shapes for name in self.raw_vars):
        print('Warning: %s holds no moving averages; evaluating the raw '
              'weights.' % checkpoint, flush=True)
        var_list = self.raw_vars
    for name, var in sorted(var_list.items()):
      if name not in shapes:
        raise cifar10.UserError(
            'checkpoint %s does not fit this model: it has no variable %s'
            % (checkpoint, name))
      if list(shapes[name]) != var.shape.as_list():
        raise cifar10.UserError(
            'checkpoint %s does not fit this model: variable %s has shape %s '
            'there, %s in the model' % (checkpoint, name, list(shapes[name]),
                                        var.shape.as_list()))
    with self.graph.as_default():
      return tf.train.Saver(var_list)

  def evaluate(self, checkpoint, writer):
    """Evaluates one checkpoint; returns (correct, total, global_step)."""
    saver = self._saver_for(checkpoint)
    with tf.Session(graph=self.graph) as sess:
      saver.restore(sess, checkpoint)
      sess.run(self.local_init)
      step = int(sess.run(self.global_step))
      coord = tf.train.Coordinator()
      threads = tf.train.start_queue_runners(sess=sess, coord=coord)
      correct = total = 0
      summary = None
      try:
        while total < self.num_examples:
          if summary is None:
            batch, summary = sess.run([self.correct, self.summary_op])
          else:
            batch = sess.run(self.correct)
          batch = batch[:self.num_examples - total]
          correct += int(np.sum(batch))
          total += len(batch)
      except tf.errors.OutOfRangeError:
        pass  # every record was read once: the epoch is over
      finally:
        coord.request_stop()
        coord.join(threads, stop_grace_period_secs=10)
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


def prepare_eval_dir(eval_dir):
  try:
    if not os.path.isdir(eval_dir):
      os.makedirs(eval_dir)
  except OSError as e:
    raise cifar10.UserError('--eval_dir=%s: cannot create it: %s'
                            % (eval_dir, e.strerror))
  if not os.access(eval_dir, os.W_OK | os.X_OK):
    raise cifar10.UserError('--eval_dir=%s: not writable' % eval_dir)


def evaluate():
  """Evaluates the latest checkpoint once, or each new one as it appears."""
  filenames = cifar10_input.data_files(FLAGS.data_dir,
                                       FLAGS.eval_data == 'test')
  available = cifar10_input.count_examples(filenames)
  evaluator = Evaluator(filenames, min(FLAGS.num_examples, available))
  writer = tf.summary.FileWriter(FLAGS.eval_dir, evaluator.graph)
  last_evaluated = None
  said_waiting = False
  try:
    while True:
      checkpoint = tf.train.latest_checkpoint(FLAGS.checkpoint_dir)
      if checkpoint is None:
        message = 'No checkpoint file found in --checkpoint_dir=%s' % (
            FLAGS.checkpoint_dir)
        if FLAGS.run_once:
          raise cifar10.UserError(message)
        if not said_waiting:
          print(message + '; waiting for one.', flush=True)
          said_waiting = True
      elif checkpoint != last_evaluated:
        last_evaluated = checkpoint
        try:
          evaluator.evaluate(checkpoint, writer)
        except cifar10.UserError as e:
          if FLAGS.run_once:
            raise
          print('Skipping: %s' % e, flush=True)
      if FLAGS.run_once:
        return
      time.sleep(FLAGS.eval_interval_secs)
  except KeyboardInterrupt:
    print('Interrupted; stopping.', flush=True)
  finally:
    writer.close()


def main(argv=None):
  del argv
  cifar10.maybe_download_and_extract()
  prepare_eval_dir(FLAGS.eval_dir)
  evaluate()


if __name__ == '__main__':
  cifar10.run(main)
