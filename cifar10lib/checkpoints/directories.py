"""The directories the scripts write: created, checked, and locked.

A trainer locks its --train_dir for the whole run (an OS lock on the
directory, so a second trainer there is refused and a killed one leaves no
stale lock), checks the checkpoint it would resume from before anything is
written, and removes a directory it created itself when its start fails.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import contextlib
import errno
import fcntl
import os
import shutil

from cifar10lib.base.errors import UserError
from cifar10lib.checkpoints import checkpoints

# Where Linux lists the file locks and the processes holding them.
LOCKS_TABLE = '/proc/locks'
_held_locks = {}   # realpath of a train dir: file descriptor of its lock


def prepare_dir(flag, path):
  """Creates directory path if needed; UserError naming flag if unusable."""
  try:
    if not os.path.isdir(path):
      os.makedirs(path)
  except OSError as e:
    raise UserError('%s=%s: cannot create it: %s' % (flag, path, e.strerror))
  if not os.access(path, os.W_OK | os.X_OK):
    raise UserError('%s=%s: not writable' % (flag, path))


def prepare_train_dir(train_dir):
  """Creates train_dir if needed, locks it and checks that training can resume.

  Raises UserError when the directory cannot be written, when another
  trainer holds it, or when the checkpoint to resume from is unreadable
  (which is then left untouched) or missing although the state file names
  one.
  """
  prepare_dir('--train_dir', train_dir)
  lock_train_dir(train_dir)
  state = os.path.join(train_dir, checkpoints.STATE_FILE)
  if os.path.isdir(state):
    raise UserError('--train_dir=%s: %s is a directory, where the checkpoint '
                    'state file belongs; move it away (nothing was changed)'
                    % (train_dir, state))
  resolution = checkpoints.resolve(train_dir)
  if resolution.problem:
    raise UserError(
        '--train_dir=%s: %s, and no complete checkpoint is there to resume '
        'from; nothing was changed: put the checkpoint back, delete %s to '
        'start afresh, or use another --train_dir'
        % (train_dir, resolution.problem, state))
  latest = resolution.path
  if latest:
    try:
      checkpoints.read_checkpoint(latest)
    except UserError as e:
      raise UserError(
          '%s; refusing to resume from it (nothing was changed): move it '
          'away to resume from an earlier one, or use another --train_dir' % e)


def lock_train_dir(train_dir):
  """Locks train_dir for this process, or raises UserError naming the holder.

  An OS lock (flock) on the directory itself, held until the process ends:
  a killed trainer never leaves a stale lock behind, and no file is written
  (a refused start changes nothing). Evaluators do not lock.
  """
  key = os.path.realpath(train_dir)
  if key in _held_locks:
    return
  try:
    fd = os.open(train_dir, os.O_RDONLY)
  except OSError as e:
    raise UserError('--train_dir=%s: cannot open it: %s'
                    % (train_dir, e.strerror))
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except OSError as e:
    os.close(fd)
    if e.errno not in (errno.EWOULDBLOCK, errno.EACCES):
      raise UserError('--train_dir=%s: cannot lock it: %s'
                      % (train_dir, e.strerror))
    raise UserError(
        '--train_dir=%s: another trainer (process %s) is training there; '
        'wait for it to stop, or use another --train_dir'
        % (train_dir, _lock_holder(train_dir) or 'unknown'))
  _held_locks[key] = fd


def _lock_holder(path):
  """The PID holding a flock on path, from Linux's /proc/locks, or None."""
  inode = os.stat(path).st_ino
  try:
    with open(LOCKS_TABLE) as f:
      for line in f:
        # "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF"
        fields = line.split()
        if (len(fields) > 5 and fields[1] == 'FLOCK' and
            fields[5].rsplit(':', 1)[-1] == str(inode)):
          return fields[4]
  except (IOError, OSError):
    pass
  return None


def unlock_train_dir(train_dir):
  fd = _held_locks.pop(os.path.realpath(train_dir), None)
  if fd is not None:
    os.close(fd)


@contextlib.contextmanager
def claim_train_dir(train_dir):
  """prepare_train_dir(train_dir) for the training run inside the block.

  When the run fails before it saved a checkpoint, a train_dir that it
  created is removed again, so that a failed start leaves nothing behind.
  """
  created = not os.path.lexists(train_dir)
  try:
    prepare_train_dir(train_dir)
    yield
  except BaseException:
    if (created and os.path.isdir(train_dir) and
        not checkpoints.complete_checkpoints(train_dir)):
      shutil.rmtree(train_dir, ignore_errors=True)
    raise
  finally:
    unlock_train_dir(train_dir)
