"""The trainers' checkpoint saver: relative paths, a failed save cleaned up.

TensorFlow's Saver, as MonitoredTrainingSession uses it, with three
differences: the state file names checkpoints relative to --train_dir; a
failed save (a full disk) removes its partial files, leaves a state file
naming only checkpoints that exist and says why in one line; and a
checkpoint this saver did not write (the one a trainer resumed from) is
never written over.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import glob
import os
import shutil

from cifar10lib.base.compat import tf
from cifar10lib.base.errors import UserError
from cifar10lib.checkpoints import checkpoint_files


class _CheckpointSaver(tf.train.Saver):
  """A Saver whose failed save cleans up after itself and says why, in a line.

  TensorFlow leaves a failed save's half-written `<prefix>_temp*` files
  behind (which fill the disk again at the next start) and reports it as a
  traceback. Nor does it overwrite a checkpoint it did not write itself:
  the session saves at the step it resumed from, which is there already,
  with the same values.
  """

  def __init__(self, *args, **kwargs):
    super(_CheckpointSaver, self).__init__(*args, **kwargs)
    self._bytes_needed = sum(
        v.shape.num_elements() * v.dtype.base_dtype.size
        for v in tf.global_variables() if v.shape.is_fully_defined())
    # The rest of the graph is added after the saver: its file (.meta) is
    # measured at the failure.
    self._graph = tf.get_default_graph()
    self._written = set()

  def save(self, sess, save_path, global_step=None, *args, **kwargs):
    prefix = save_path
    if global_step is not None:
      prefix = '%s-%d' % (save_path, tf.train.global_step(sess, global_step)
                          if hasattr(global_step, 'op') else int(global_step))
    existed = os.path.exists(prefix + '.index')
    if existed and prefix not in self._written:
      return prefix
    try:
      saved = super(_CheckpointSaver, self).save(sess, save_path, global_step,
                                                 *args, **kwargs)
    except (tf.errors.OpError, ValueError) as e:
      raise self._failed(prefix, existed, e)
    self._written.add(prefix)
    return saved

  def _failed(self, prefix, existed, error):
    """Removes the failed save's own files; returns the UserError to raise."""
    leftovers = glob.glob(glob.escape(prefix) + '_temp*')
    leftovers += glob.glob(glob.escape(prefix) + '.*tempstate*')
    # The graph is written to <prefix>.meta.tmp<random>, then renamed.
    leftovers += glob.glob(glob.escape(prefix) + '.meta.tmp*')
    if not existed:  # a new checkpoint, never one resumed from
      leftovers += glob.glob(glob.escape(prefix) + '.index')
      leftovers += glob.glob(glob.escape(prefix) + '.data-*')
      leftovers += glob.glob(glob.escape(prefix) + '.meta')
    for path in leftovers:
      if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
      else:
        try:
          os.remove(path)
        except OSError:
          pass
    directory = os.path.dirname(prefix)
    # The saver names a checkpoint in the state file before it writes the
    # graph: a failure there leaves it naming the files just removed.
    checkpoint_files.forget_missing(directory)
    try:
      free = ' (%.1f MB free)' % (shutil.disk_usage(directory).free / 1e6)
    except OSError:
      free = ''
    message = getattr(error, 'message', None) or str(error)
    lines = message.strip().splitlines()
    # TensorFlow says why a file failed as "<file>; <reason>", after (on
    # TensorFlow 2.x) lines about where the graph defined the save.
    reasons = [l.rsplit('; ', 1)[1] for l in lines if '; ' in l]
    return UserError(
        '--train_dir=%s: cannot save checkpoint %s: %s; a checkpoint needs '
        'about %.1f MB there, its graph included%s; its partial files were '
        'removed, the checkpoints saved before are kept'
        % (directory, os.path.basename(prefix),
           reasons[-1] if reasons else lines[0],
           (self._bytes_needed + self._graph_bytes()) / 1e6, free))

  def _graph_bytes(self):
    """The size of the checkpoint's graph file (.meta), as save writes it."""
    with self._graph.as_default():
      return self.export_meta_graph().ByteSize()


def checkpoint_saver(max_to_keep=5):  # TensorFlow's own default
  """The session's usual sharded saver, but with relative checkpoint paths.

  It keeps the latest max_to_keep checkpoints (0: every one), as
  TensorFlow's Saver does.

  The `checkpoint` file then names its checkpoints relative to --train_dir,
  so a moved or copied directory resumes from its own checkpoints rather
  than from (or, once gone, without) those of its old location. A failed
  save is a UserError, after removing its partial files.
  """
  return _CheckpointSaver(sharded=True, allow_empty=True,
                          save_relative_paths=True,
                          max_to_keep=max_to_keep)
