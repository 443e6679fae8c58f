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

--per_class adds, after each precision line, one line per class: its
precision @ 1 and the class its examples are most often taken for; and
writes each class's precision and the confusion matrix (an image: row = true
class, column = predicted class, brightness = that share of the row) to
TensorBoard. Class names as cifar10_classify.py gives them.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import os
import time

from absl import flags

from cifar10lib.base.compat import tf
from cifar10lib.base.errors import UserError
from cifar10lib.checkpoints import checkpoints
from cifar10lib.checkpoints import directories
from cifar10lib.cli import cli
from cifar10lib.cli import flag_groups
from cifar10lib.evaluation import classifying
from cifar10lib.evaluation import evaluation
from cifar10lib.training import schedules

FLAGS = flags.FLAGS
# A save writes its .index in well under this: a checkpoint that did not
# read beside a trainer is looked at again this much later at the soonest.
RELOOK_SECS = 2
cli.define_flags('data', 'download', 'split', 'batch', 'model', 'checkpoint',
                 'preprocessing', 'session')
flags.DEFINE_string('eval_dir', '/tmp/cifar10_eval',
                    'Directory where to write event logs.')
flags.DEFINE_enum('eval_data', 'test', ['test', 'train_eval', 'validation'],
                  '"test" (the test file), "train_eval" (the training '
                  'records) or "validation" (the last --validation_examples '
                  'training records, held out of training).')
flags.DEFINE_integer('eval_interval_secs', 300,
                     'How often to look for a new checkpoint.', lower_bound=0,
                     upper_bound=flag_groups.MAX_SECS)
flags.DEFINE_integer('num_examples', 10000, 'Number of examples to run.',
                     lower_bound=1, upper_bound=flag_groups.MAX_INT64)
flags.DEFINE_boolean('run_once', False,
                     'Evaluate the latest checkpoint once and exit.')
# Shared with cifar10_export.py (--moving_average, --tta).
cli.define_script_flags('moving_average', 'tta', 'per_class')
flags.DEFINE_list('checkpoint_paths', [],
                  'Comma-separated checkpoints (or directories, for their '
                  'latest) to evaluate once as an ensemble that averages '
                  'their softmax outputs; replaces --checkpoint_dir.')
flags.DEFINE_boolean('snapshots', False,
                     'Evaluate once, as an ensemble (see --checkpoint_paths), '
                     'the snapshot-<step> checkpoints that '
                     '--lr_schedule=cosine_restarts kept in --checkpoint_dir.')


def _still_being_written(resolution, unreadable_once):
  """Whether a watcher should look again before reading resolution's pick.

  A checkpoint that the state file does not name may be a save still being
  written beside the evaluator (the first save has no state file yet): the
  first time it does not read, the watcher looks again at its next look,
  RELOOK_SECS later at the soonest; the second time, the evaluation reports
  it unreadable.
  """
  if (FLAGS.run_once or not resolution.note or
      resolution.path == unreadable_once):
    return False
  try:
    checkpoints.read_checkpoint(resolution.path)
  except UserError:
    return True
  return False


def evaluate(cfg, split):
  """Evaluates the latest checkpoint once, or each new one as it appears."""
  evaluator = evaluation.Evaluator(
      split, min(FLAGS.num_examples, split.num_examples),
      cli.session_config(cfg), cfg.batch_size, cfg.use_fp16,
      cfg.model_options(train=False), cli.moving_average(cfg),
      cfg.preprocessing,
      recorded=cli.options_to_read_with(cfg, FLAGS.eval_data),
      full=cli.full_images(cfg), tta=FLAGS.tta,
      class_names=(classifying.class_names(cfg.data_dir, cfg.dataset)
                   if FLAGS.per_class else None))
  if FLAGS.snapshots:
    paths = schedules.snapshot_paths(cfg.checkpoint_dir)
    if not paths:
      raise UserError('--snapshots: no snapshot-<step> checkpoint in '
                      '--checkpoint_dir=%s (they come from training with '
                      '--lr_schedule=cosine_restarts)' % cfg.checkpoint_dir)
    evaluation.evaluate_ensemble(evaluator, paths)
    return
  if FLAGS.checkpoint_paths:
    evaluation.evaluate_ensemble(evaluator, FLAGS.checkpoint_paths)
    return
  # A watcher does not score again a step already scored into --eval_dir
  # (by --run_once, or an earlier watcher): a second point would be a
  # duplicate in TensorBoard.
  scored = {} if FLAGS.run_once else evaluation.scored_steps(FLAGS.eval_dir)
  writer = tf.summary.FileWriter(FLAGS.eval_dir, evaluator.graph)
  last_evaluated = None
  said_waiting = said_next = False
  last_note = unreadable_once = None
  looking_again = False
  try:
    while True:
      resolution = checkpoints.resolve(cfg.checkpoint_dir)
      checkpoint = resolution.path
      if checkpoint is None:
        message = 'No checkpoint file found in --checkpoint_dir=%s%s' % (
            cfg.checkpoint_dir,
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
        step = evaluation.checkpoint_step(checkpoint)
        if step in scored:
          print('%s is already scored in --eval_dir=%s (precision @ 1 = '
                '%.3f); waiting for a newer checkpoint.' % (
                    os.path.basename(checkpoint), FLAGS.eval_dir,
                    scored[step]), flush=True)
        else:
          try:
            evaluator.evaluate(checkpoint, writer)
          except UserError as e:
            if FLAGS.run_once:
              raise
            print('Skipping: %s' % e, flush=True)
      elif checkpoint != last_evaluated:
        unreadable_once = checkpoint
        looking_again = True
      if FLAGS.run_once:
        return
      if not said_next:
        # Otherwise a watching evaluator looks stuck until its next look,
        # minutes later by default; once is enough to know it is alive.
        print('Next look in %d s (--eval_interval_secs); Ctrl-C stops.'
              % FLAGS.eval_interval_secs, flush=True)
        said_next = True
      evaluation.rearm_sigint()
      time.sleep(max(FLAGS.eval_interval_secs, RELOOK_SECS) if looking_again
                 else FLAGS.eval_interval_secs)
      looking_again = False
  except (KeyboardInterrupt, SystemError) as e:
    # Ctrl-C landing inside one of TensorFlow 1.15's SWIG calls (reading the
    # `checkpoint` file) comes out as a SystemError caused by the interrupt.
    if not isinstance(e, KeyboardInterrupt) and not isinstance(
        e.__cause__, KeyboardInterrupt):
      raise
    print('Interrupted; stopping.', flush=True)
  finally:
    with evaluation.sigint_held():
      writer.close()


def main(argv, cfg):
  del argv
  cli.maybe_download_and_extract(cfg)
  # Bad data fails before --eval_dir is made.
  split = cli.data_split(cfg, FLAGS.eval_data)
  directories.prepare_dir('--eval_dir', FLAGS.eval_dir)
  evaluate(cfg, split)


if __name__ == '__main__':
  cli.run(main)
