"""What a chief trainer checks and writes before its session starts.

It checks that the checkpoint it would resume from fits its graph (its
variables, and the options recorded beside it: run_record.py) before
anything is written; then, once training is sure to start, it repairs the
state file, sets aside the checkpoints its saves would overwrite
(checkpoint_files.py) and records its options.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import os

from cifar10lib.base.compat import tf
from cifar10lib.base.errors import UserError
from cifar10lib.checkpoints import checkpoint_files
from cifar10lib.checkpoints import checkpoints
from cifar10lib.checkpoints import run_record


def _repair_state(train_dir, resolution):
  """Makes train_dir's state file name resolution's checkpoints, relatively.

  Done before the session restores (it follows the state file) and before
  the first save (whose rotation deletes the files the state file lists).
  """
  if resolution.state is None:
    return
  checkpoints.write_state(train_dir, *resolution.state)
  print('Note: %s; rewrote the state file.' % resolution.note
        if resolution.note else
        'Note: rewrote %s with paths relative to --train_dir.'
        % os.path.join(train_dir, checkpoints.STATE_FILE), flush=True)


def check_resumable(train_dir, record=None):
  """Raises UserError when train_dir's checkpoint cannot restore this graph.

  Without it, resuming a directory trained with other model flags (or by
  the other trainer) ends in TensorFlow's NotFoundError traceback; and a
  graph that differs without differing variables (another --norm) is only
  seen in the directory's record of its options. Returns the
  checkpoints.Resolution to resume from; nothing is written yet
  (_prepare_resume does that once training is sure to start).
  """
  resolution = checkpoints.resolve(train_dir)
  latest = resolution.path
  if not latest:
    return resolution
  variables = {v.op.name: v for v in tf.global_variables()}
  try:
    checkpoints.checkpoint_var_list(latest, {}, variables,
                                    moving_average=False)
  except UserError as e:
    raise UserError('--train_dir=%s: cannot resume: %s; use another '
                    '--train_dir (nothing was changed)' % (train_dir, e))
  # After the variables, which say more where they differ.
  if record is not None:
    run_record.check(train_dir, record, '--train_dir')
  return resolution


def prepare_resume(train_dir, resolution, record):
  """What a chief writes before its session: the state file repaired, the
  checkpoints it would overwrite set aside, the record of its options."""
  _repair_state(train_dir, resolution)
  aside = checkpoint_files.set_aside_newer(train_dir, resolution.path)
  if aside:
    print('Note: %s.' % aside, flush=True)
  if record is not None and (run_record.read(train_dir) is None or
                             not checkpoints.complete_checkpoints(train_dir)):
    run_record.write(train_dir, record)
    return [run_record.path(train_dir)]
  return []
