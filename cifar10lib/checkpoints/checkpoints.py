"""Finds, checks and restores checkpoints before TensorFlow would.

TensorFlow reports a checkpoint that does not fit the graph, or a corrupt
one, as a traceback from deep inside a restore. These checks read the
checkpoint first and name the file and the first variable that is wrong.

TensorFlow also trusts a directory's `checkpoint` state file blindly: a
copied directory whose state names the source's files by absolute paths
resumes from (and rotates away) the source's checkpoints, and a missing or
damaged state file makes a trainer start again from step 0 over the saved
checkpoints. `resolve` decides from the files themselves; every script uses
it.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import collections
import os
import re
import tempfile

from google.protobuf import text_format

from cifar10lib import models
from cifar10lib.base.compat import tf
from cifar10lib.base.errors import UserError

STATE_FILE = 'checkpoint'   # TensorFlow's name for a directory's state file
_INDEX_SUFFIX = '.index'
_DATA_SHARD = re.compile(r'\.data-(\d{5})-of-(\d{5})$')
_STEP = re.compile(r'-(\d+)$')
# TensorFlow keeps its state proto class private; this public helper builds one.
_CheckpointState = type(tf.train.generate_checkpoint_state_proto('/', '/x'))


class Resolution(collections.namedtuple('Resolution', [
    'path', 'note', 'problem', 'state'])):
  """Which checkpoint of a directory to use, and why.

  path: the checkpoint (its full prefix), or None when there is none.
  note: one line saying why the state file was not followed as it stands.
  problem: why there is no checkpoint although the state file names one.
  state: (checkpoint, [checkpoints]) that the state file must name before
    anything saves into the directory, or None when it names them already.
  """


def _order(prefix):
  """Sort key of checkpoints: the step in the name, then the index's age."""
  match = _STEP.search(prefix)
  try:
    mtime = os.path.getmtime(prefix + _INDEX_SUFFIX)
  except OSError:
    mtime = 0
  return (int(match.group(1)) if match else -1, mtime)


def complete_checkpoints(directory):
  """The directory's complete checkpoints (full prefixes), oldest first.

  Complete: a readable .index and every .data shard it was written with.
  A half-written save (TensorFlow's `<prefix>_temp*` directories, or an
  .index without its data) is not one.
  """
  try:
    names = os.listdir(directory)
  except OSError:
    return []
  totals = collections.defaultdict(set)
  for name in names:
    match = _DATA_SHARD.search(name)
    if match:
      totals[name[:match.start()]].add(int(match.group(2)))
  complete = []
  for name in names:
    if not name.endswith(_INDEX_SUFFIX):
      continue
    base = name[:-len(_INDEX_SUFFIX)]
    # A checkpoint saved again with another number of shards keeps the old
    # shards beside the new ones; any full set will do (reading tells).
    for total in totals[base]:
      files = [name] + ['%s.data-%05d-of-%05d' % (base, i, total)
                        for i in range(total)]
      if all(os.path.isfile(os.path.join(directory, f)) and
             os.access(os.path.join(directory, f), os.R_OK) for f in files):
        complete.append(os.path.join(directory, base))
        break
  return sorted(complete, key=_order)


def _read_state(path):
  """(state proto, None), or (None, what is wrong with it); (None, None) if absent."""
  if not os.path.lexists(path):
    return None, None
  if os.path.isdir(path):
    return None, 'is a directory'
  try:
    with open(path, 'rb') as f:
      text = f.read().decode('utf-8')
    state = _CheckpointState()
    text_format.Parse(text, state)
  except (IOError, OSError) as e:
    return None, 'cannot be read (%s)' % (e.strerror or e)
  except (UnicodeDecodeError, text_format.ParseError, ValueError):
    return None, 'is damaged (not a checkpoint state)'
  if not state.model_checkpoint_path:
    return None, 'names no checkpoint'
  return state, None


def _inside(directory, path):
  return (os.path.realpath(os.path.dirname(path)) ==
          os.path.realpath(directory))


def _as_named(directory, name):
  """The file a state entry names, as TensorFlow reads it."""
  return name if os.path.isabs(name) else os.path.join(directory, name)


def _own(directory, name, complete):
  """The directory's own complete checkpoint that a state entry means.

  An absolute path elsewhere (a copied or moved directory) means the file
  of the same base name here.
  """
  path = _as_named(directory, name)
  if not _inside(directory, path):
    path = os.path.join(directory, os.path.basename(name))
  return path if path in complete else None


def resolve(directory):
  """Which checkpoint of directory to resume or read, from its files.

  The state file is followed where it names a complete checkpoint of the
  directory (a file of the same name there, when it names one elsewhere);
  else the newest complete one that reads is used, with a note. See
  Resolution.
  """
  state_path = os.path.join(directory, STATE_FILE)
  complete = complete_checkpoints(directory)
  state, problem = _read_state(state_path)
  own = state and _own(directory, state.model_checkpoint_path, complete)
  # One the state file does not name must also read, so that a save killed
  # while writing its index is not taken for the newest checkpoint. When
  # none reads, the newest stands, and the caller's reading refuses it.
  newest = None if own else next(
      (p for p in reversed(complete) if _readable(p)),
      complete[-1] if complete else None)
  if state is None:
    if newest is None:
      return Resolution(None, None,
                        problem and '%s %s' % (state_path, problem), None)
    return Resolution(newest, '%s %s; using the newest complete checkpoint, '
                      '%s' % (state_path, problem or 'is missing', newest),
                      None, (newest, [newest]))
  named = state.model_checkpoint_path
  note = None
  if own is None:
    elsewhere = os.path.join(directory, os.path.basename(named))
    if newest is None:
      return Resolution(None, None, '%s names %s, which does not exist%s' % (
          state_path, named, '' if _inside(directory, _as_named(
              directory, named)) else ' (nor does %s)' % elsewhere), None)
    chosen = newest
    note = ('%s names %s, which is missing or incomplete; using the newest '
            'complete checkpoint, %s' % (state_path, named, newest))
  else:
    # A checkpoint newer than the one the state names is a save that never
    # finished: the saver names a checkpoint in the state file last.
    chosen = own
    if own != _as_named(directory, named):
      note = ('%s names %s, outside %s; using the directory\'s own %s'
              % (state_path, named, directory, own))
  paths = [p for p in (_own(directory, n, complete)
                       for n in state.all_model_checkpoint_paths)
           if p and p != chosen and _order(p) <= _order(chosen)]
  paths = sorted(set(paths), key=_order) + [chosen]
  right = chosen == _as_named(directory, named) and all(
      _inside(directory, _as_named(directory, n))
      for n in state.all_model_checkpoint_paths)
  return Resolution(chosen, note, None, None if right else (chosen, paths))


def _readable(path):
  try:
    _read(path)
  except UserError:
    return False
  return True


def write_state(directory, checkpoint, all_checkpoints):
  """Atomically rewrites directory's state file with relative paths.

  The saver's rotation then only ever deletes the directory's own files.
  """
  state = _CheckpointState(
      model_checkpoint_path=os.path.relpath(checkpoint, directory),
      all_model_checkpoint_paths=[os.path.relpath(p, directory)
                                  for p in all_checkpoints])
  path = os.path.join(directory, STATE_FILE)
  write_atomically(path, text_format.MessageToString(state), 'rewrite')


def write_atomically(path, text, verb='write'):
  """Writes text to path through a temporary file renamed over it, so that
  a reader never sees half of it; raises UserError (cannot <verb> path)."""
  try:
    fd, temp = tempfile.mkstemp(prefix=os.path.basename(path) + '.',
                                suffix='.tmp', dir=os.path.dirname(path))
  except OSError as e:
    raise UserError('cannot %s %s: %s' % (verb, path, e.strerror or e))
  try:
    with os.fdopen(fd, 'w') as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    os.chmod(temp, 0o644)
    os.replace(temp, path)
  except OSError as e:
    try:
      os.remove(temp)
    except OSError:
      pass
    raise UserError('cannot %s %s: %s' % (verb, path, e.strerror or e))


def _read(path):
  """({name: shape}, {name: dtype}) of a checkpoint, after reading every value.

  Raises UserError naming the checkpoint when any of it cannot be read (a
  truncated or corrupt file), so that nobody trains or evaluates from it.
  """
  # TensorFlow 2.x reports a data file shorter than its index as IndexError.
  try:
    reader = tf.train.NewCheckpointReader(path)
    shapes = reader.get_variable_to_shape_map()
    dtypes = reader.get_variable_to_dtype_map()
    for name in shapes:
      reader.get_tensor(name)
  except (tf.errors.OpError, ValueError, RuntimeError, IndexError) as e:
    message = getattr(e, 'message', None) or str(e)
    raise UserError('checkpoint %s is unreadable: %s'
                    % (path, message.strip().splitlines()[0]))
  return shapes, dtypes


def read_checkpoint(path):
  """Returns {variable name: shape} of a checkpoint, after reading every value.

  Raises UserError naming the checkpoint when any of it cannot be read.
  """
  return _read(path)[0]


def _dtype_hint(name, dtype):
  if name == 'global_step' and dtype.is_floating:
    return (' (the original tutorial\'s cifar10_multi_gpu_train.py writes a '
            'float global_step: cifar10_eval.py and cifar10_classify.py read '
            'such a checkpoint, training cannot continue it)')
  return ' (was it trained with another --use_fp16?)'


def checkpoint_var_list(checkpoint, shadow_vars, raw_vars, moving_average=True,
                        cast=False):
  """The {name in checkpoint: variable} to restore from checkpoint.

  shadow_vars maps the moving averages' names to the model's variables (see
  variables_to_restore), raw_vars the weights' own names. With moving_average
  the averages are restored, or the raw weights with a warning when the
  checkpoint holds no averages; without it, the raw weights. Raises UserError
  when the checkpoint cannot be read, when it holds another network than
  the graph (naming both), and naming the first variable it lacks or holds
  in another shape, or (unless cast: see restore) another dtype.
  """
  shapes, dtypes = _read(checkpoint)
  var_list = shadow_vars if moving_average else raw_vars
  if moving_average and not all(name in shapes for name in var_list):
    if all(name in shapes for name in raw_vars):
      print('Warning: %s holds no moving averages; using the raw weights.'
            % checkpoint, flush=True)
      var_list = raw_vars
  _check_same_network(checkpoint, shapes, var_list)
  # A dtype that differs is checked first: it says more than the variables
  # that such a checkpoint (the original's multi-GPU trainer's) also lacks.
  for name, var in sorted(var_list.items()):
    if (not cast and name in dtypes and
        tf.as_dtype(dtypes[name]) != var.dtype.base_dtype):
      raise UserError(
          'checkpoint %s does not fit this model: variable %s is %s there, '
          '%s in the model%s' % (checkpoint, name, tf.as_dtype(dtypes[name]).name,
                                 var.dtype.base_dtype.name,
                                 _dtype_hint(name, tf.as_dtype(dtypes[name]))))
  hint = (' (was it trained with other --model, --norm, --top_layers, '
          '--dataset or --optimizer, or by another training script?)')
  for name, var in sorted(var_list.items()):
    if name not in shapes:
      raise UserError('checkpoint %s does not fit this model: it has no '
                      'variable %s%s' % (checkpoint, name, hint))
    if list(shapes[name]) != var.shape.as_list():
      raise UserError(
          'checkpoint %s does not fit this model: variable %s has shape %s '
          'there, %s in the model%s' % (checkpoint, name, list(shapes[name]),
                                        var.shape.as_list(), hint))
  return var_list


def restore(session, checkpoint, var_list):
  """Loads var_list's values from checkpoint, each cast to its variable's dtype.

  A Saver restores only the dtypes it saved: neither a float32 checkpoint
  into --use_fp16's variables (or back), nor the original multi-GPU
  trainer's float32 global_step into an int64 one. Evaluation and
  classification need only the values; no op is added to the graph.
  """
  try:
    reader = tf.train.NewCheckpointReader(checkpoint)
    feed = {}
    for name, var in var_list.items():
      value = reader.get_tensor(name)
      feed[var.initializer.inputs[1]] = value.astype(
          var.dtype.base_dtype.as_numpy_dtype)
  except (tf.errors.OpError, ValueError, RuntimeError, IndexError) as e:
    message = getattr(e, 'message', None) or str(e)
    raise UserError('checkpoint %s is unreadable: %s'
                    % (checkpoint, message.strip().splitlines()[0]))
  session.run([var.initializer for var in var_list.values()], feed)


def _check_same_network(checkpoint, shapes, var_list):
  """Raises UserError when checkpoint holds another network than var_list's."""
  theirs = models.identify(shapes)
  ours = models.identify({var.op.name: var.shape.as_list()
                          for var in var_list.values()})
  if theirs and ours and theirs != ours:
    raise UserError('checkpoint %s holds a --model=%s network, not this '
                    '--model=%s one' % (checkpoint, theirs, ours))
