"""The record of the options a directory's checkpoints were trained with.

A checkpoint holds variables, not the graph around them: a network trained
with --norm=none restores without a complaint into the default --norm=lrn
graph (LRN has no variables), and then scores the wrong network. So a
trainer writes the options that shape its graph or give its data their
meaning into `run_options.json` beside its checkpoints, and resuming,
evaluating and classifying compare theirs with it. A directory without the
file (the original tutorial's, or one trained before it existed) is used as
before, unchecked.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import json
import os

from cifar10lib.base.errors import UserError
from cifar10lib.checkpoints import checkpoints

RECORD_FILE = 'run_options.json'
# Recorded, but never refused: --precision changes the arithmetic only, and
# a checkpoint (float32 in every precision) resumes and evaluates in any.
NOT_COMPARED = ('precision',)


def path(directory):
  return os.path.join(directory, RECORD_FILE)


def read(directory):
  """The recorded {option: value} of directory, or None when it has none.

  Raises UserError when the record is there but cannot be read or parsed.
  """
  record = path(directory)
  if not os.path.lexists(record):
    return None
  try:
    with open(record) as f:
      options = json.load(f)
  except (IOError, OSError) as e:
    raise UserError('%s cannot be read: %s' % (record, e.strerror or e))
  except ValueError:
    raise UserError('%s is damaged (not the JSON a trainer writes); move it '
                    'away to use the directory unchecked' % record)
  if not isinstance(options, dict):
    raise UserError('%s is damaged (not the JSON a trainer writes); move it '
                    'away to use the directory unchecked' % record)
  return options


def write(directory, options):
  """Writes options as directory's record, atomically (a temporary file
  renamed over it), so a reader never sees half of one."""
  checkpoints.write_atomically(
      path(directory), json.dumps(options, indent=1, sort_keys=True) + '\n')


def mismatch(recorded, options, keys=None):
  """The first (option, recorded value, value now) that differs, or None.

  Only options present in both are compared (keys, when given, limits them
  further): a script without a flag has nothing to contradict.
  """
  for key in sorted(options):
    if (key in recorded and key not in NOT_COMPARED and
        (keys is None or key in keys)):
      if recorded[key] != options[key]:
        return key, recorded[key], options[key]
  return None


def check(directory, options, flag=None, keys=None):
  """Raises UserError when directory's record contradicts options.

  flag, when given, names the directory's flag in the message
  (--train_dir, ...). Returns the record (None when there is none).
  """
  recorded = read(directory)
  if recorded is None:
    return None
  differs = mismatch(recorded, options, keys)
  if differs:
    key, theirs, ours = differs
    raise UserError(
        '%s was trained with --%s=%s, not --%s=%s (recorded in %s); give '
        '--%s=%s, or use another directory (nothing was changed)'
        % ('%s=%s' % (flag, directory) if flag else directory,
           key, _shown(theirs), key, _shown(ours),
           RECORD_FILE, key, _shown(theirs)))
  return recorded


def _shown(value):
  if isinstance(value, bool):
    return 'true' if value else 'false'
  return value
