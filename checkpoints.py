"""Checks a checkpoint before anything restores from it.

TensorFlow reports a checkpoint that does not fit the graph, or a corrupt
one, as a traceback from deep inside a restore. These checks read the
checkpoint first and name the file and the first variable that is wrong.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

from compat import tf
from errors import UserError
import models


def read_checkpoint(path):
  """Returns {variable name: shape} of a checkpoint, after reading every value.

  Raises UserError naming the checkpoint when any of it cannot be read (a
  truncated or corrupt file), so that nobody trains or evaluates from it.
  """
  # TensorFlow 2.x reports a data file shorter than its index as IndexError.
  try:
    reader = tf.train.NewCheckpointReader(path)
    shapes = reader.get_variable_to_shape_map()
    for name in shapes:
      reader.get_tensor(name)
  except (tf.errors.OpError, ValueError, RuntimeError, IndexError) as e:
    message = getattr(e, 'message', None) or str(e)
    raise UserError('checkpoint %s is unreadable: %s'
                    % (path, message.strip().splitlines()[0]))
  return shapes


def checkpoint_var_list(checkpoint, shadow_vars, raw_vars, moving_average=True):
  """The {name in checkpoint: variable} to restore from checkpoint.

  shadow_vars maps the moving averages' names to the model's variables (see
  variables_to_restore), raw_vars the weights' own names. With moving_average
  the averages are restored, or the raw weights with a warning when the
  checkpoint holds no averages; without it, the raw weights. Raises UserError
  when the checkpoint cannot be read, when it holds another network than
  the graph (naming both), and naming the first variable it lacks or holds
  in another shape.
  """
  shapes = read_checkpoint(checkpoint)
  var_list = shadow_vars if moving_average else raw_vars
  if moving_average and not all(name in shapes for name in var_list):
    if all(name in shapes for name in raw_vars):
      print('Warning: %s holds no moving averages; using the raw weights.'
            % checkpoint, flush=True)
      var_list = raw_vars
  _check_same_network(checkpoint, shapes, var_list)
  hint = (' (was it trained with other --model, --norm, --top_layers, --dataset or '
          '--optimizer, or by another training script?)')
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


def _check_same_network(checkpoint, shapes, var_list):
  """Raises UserError when checkpoint holds another network than var_list's."""
  theirs = models.identify(shapes)
  ours = models.identify({var.op.name: var.shape.as_list()
                          for var in var_list.values()})
  if theirs and ours and theirs != ours:
    raise UserError('checkpoint %s holds a --model=%s network, not this '
                    '--model=%s one' % (checkpoint, theirs, ours))
