"""Checkpoint files that a trainer must not overwrite, and a state file
that must not name files a failed save removed.

TensorFlow's saver writes model.ckpt-<step> whatever is there: a trainer
resuming from an earlier checkpoint than the newest on disk (the newest
unreadable, or newer than the one the state file names) would overwrite
the newer files with its own. `set_aside_newer` renames them first, under
a name saying why; no script reads them as checkpoints then.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import collections
import os
import re

from cifar10lib.base.errors import UserError
from cifar10lib.checkpoints import checkpoints

# The trainer's own checkpoints: MonitoredTrainingSession's saver names
# them model.ckpt-<step> (snapshot-<step> copies are kept apart on purpose).
_TRAINER_FILE = re.compile(
    r'^model\.ckpt-(\d+)(\.index|\.meta|\.data-\d{5}-of-\d{5})$')
_STEP = re.compile(r'-(\d+)$')


def _trainer_files(directory):
  """{step: [file names]} of the trainer's checkpoint files in directory."""
  found = collections.defaultdict(list)
  try:
    names = os.listdir(directory)
  except OSError:
    return found
  for name in names:
    match = _TRAINER_FILE.match(name)
    if match and not os.path.isdir(os.path.join(directory, name)):
      found[int(match.group(1))].append(name)
  return found


def _why_unusable(prefix, complete):
  """Why the files of checkpoint prefix cannot be resumed from, or None."""
  if prefix not in complete:
    directory = os.path.dirname(prefix)
    for name in sorted(os.listdir(directory)):
      path = os.path.join(directory, name)
      if (name.startswith(os.path.basename(prefix) + '.') and
          not os.access(path, os.R_OK)):
        return 'unreadable: %s: permission denied' % name
    return 'incomplete'
  try:
    checkpoints.read_checkpoint(prefix)
  except UserError as e:
    return 'unreadable: %s' % str(e).split(': ', 1)[-1]
  return None


def _free_suffix(directory, names, suffix):
  """suffix, or suffix.1, .2, ... where a name with it is taken already."""
  taken = 0
  while any(os.path.lexists(os.path.join(
      directory, '%s.%s%s' % (n, suffix, '.%d' % taken if taken else '')))
            for n in names):
    taken += 1
  return suffix + ('.%d' % taken if taken else '')


def set_aside_newer(directory, chosen):
  """Renames the trainer's checkpoints newer than chosen out of the way.

  chosen is the checkpoint training resumes from (None: step 0). Their
  files get a suffix saying why: `.unreadable`, `.incomplete` or
  `.superseded` (a complete one newer than chosen). Returns one line saying
  what was set aside and why, or None when nothing was.
  """
  match = _STEP.search(chosen) if chosen else None
  chosen_step = int(match.group(1)) if match else -1
  complete = checkpoints.complete_checkpoints(directory)
  moved = []
  for step, names in sorted(_trainer_files(directory).items()):
    if step <= chosen_step:
      continue
    prefix = os.path.join(directory, 'model.ckpt-%d' % step)
    why = _why_unusable(prefix, complete) or 'superseded'
    suffix = _free_suffix(directory, names, why.split(':', 1)[0])
    for name in names:
      try:
        os.rename(os.path.join(directory, name),
                  os.path.join(directory, name + '.' + suffix))
      except OSError as e:
        raise UserError('cannot set aside %s (newer than %s, which training '
                        'resumes from): %s; move it away by hand'
                        % (os.path.join(directory, name), chosen or 'step 0',
                           e.strerror or e))
    moved.append('model.ckpt-%d (%s) as model.ckpt-%d.*.%s'
                 % (step, why if why != 'superseded' else
                    'newer than the checkpoint resumed from', step, suffix))
  if not moved:
    return None
  return ('set aside %s, so that training from %s does not overwrite %s'
          % ('; '.join(moved), os.path.basename(chosen) if chosen else
             'step 0', 'them' if len(moved) > 1 else 'it'))


def forget_missing(directory):
  """Rewrites directory's state file to name only checkpoints that exist.

  After a failed save removed the checkpoint that the state file already
  named (the saver names it before it writes the graph). The state then
  names the newest complete checkpoint left; with none left, the state
  file goes too (a start from step 0 needs none).
  """
  resolution = checkpoints.resolve(directory)
  try:
    if resolution.problem:
      os.remove(os.path.join(directory, checkpoints.STATE_FILE))
    elif resolution.state:
      checkpoints.write_state(directory, *resolution.state)
  except (OSError, UserError):
    pass  # the disk is full: the next start resolves the state itself
