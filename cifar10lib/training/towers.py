"""Multi-tower training: one copy of the network per device, gradients averaged.

`build_towers` splits a batch over the towers, builds the network on each
device with shared variables and returns each tower's gradients;
`average_gradients` averages them for one update on the CPU, which holds
the variables. cifar10_multi_gpu_train.py builds its graph with these.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import re

from cifar10lib.base.compat import tf
from cifar10lib.training import cifar10


def tower_loss(scope, images, labels, model_options):
  """Builds one tower and returns its total loss (cross-entropy + decay)."""
  logits = cifar10.inference(images, **model_options)
  return cifar10.loss(logits, labels, scope=scope)


def average_gradients(tower_grads):
  """Averages each variable's gradient over the towers.

  Args:
    tower_grads: per tower, a list of (gradient, variable) pairs, all in the
      same variable order.
  Returns:
    One list of (averaged gradient, variable) pairs.
  """
  averaged = []
  for grads_and_vars in zip(*tower_grads):
    grads = [g for g, _ in grads_and_vars]
    averaged.append((tf.add_n(grads) / len(grads), grads_and_vars[0][1]))
  return averaged


def tower_devices(num_towers, device_type):
  """The device names of num_towers towers of device_type (gpu, cpu)."""
  return ['/%s:%d' % (device_type, i) for i in range(num_towers)]


class PlacementHook(tf.train.SessionRunHook):
  """Reports, after the first step, on which devices each tower really ran."""

  def __init__(self, num_towers):
    self._num_towers = num_towers
    self._done = False

  def before_run(self, run_context):
    if self._done:
      return None
    return tf.train.SessionRunArgs(
        None, options=tf.RunOptions(trace_level=tf.RunOptions.SOFTWARE_TRACE))

  def after_run(self, run_context, run_values):
    if self._done:
      return
    self._done = True
    placed = {}
    for dev_stats in run_values.run_metadata.step_stats.dev_stats:
      device = dev_stats.device.split('/device:')[-1].lower()
      for node in dev_stats.node_stats:
        tower = node.node_name.split('/')[0]
        if tower.startswith(cifar10.TOWER_NAME + '_'):
          placed.setdefault(tower, set()).add(device)
    for i in range(self._num_towers):
      tower = '%s_%d' % (cifar10.TOWER_NAME, i)
      print('%s ran on %s' % (tower, ', '.join(sorted(placed.get(tower, ['?'])))),
            flush=True)


def build_towers(images, labels, num_towers, devices, model_options=None,
                 recipe=cifar10.TUTORIAL_RECIPE, loss_scale=None):
  """Builds the towers on devices; returns (tower grads, tower 0's loss, ops).

  model_options are inference()'s keyword arguments (default: the
  tutorial's network); recipe's optimizer computes the gradients, with
  loss_scale (float16) when given.

  images and labels hold num_towers batches, split here so that every tower
  dequeues from the same queue. Only the first tower gets summaries; the
  others' would repeat its tags with other values. Likewise only the first
  tower's batch updates batch normalization's moving statistics (their ops
  are among the returned ops), which then follow one tower's batches.
  """
  image_splits = tf.split(images, num_towers)
  label_splits = tf.split(labels, num_towers)
  tower_grads = []
  first_loss = None
  summary_deps = []
  summaries = tf.get_collection_ref(tf.GraphKeys.SUMMARIES)
  with tf.variable_scope(tf.get_variable_scope()):
    for i in range(num_towers):
      with tf.device(devices[i]):
        with tf.name_scope('%s_%d' % (cifar10.TOWER_NAME, i)) as scope:
          kept = len(summaries)
          loss = tower_loss(scope, image_splits[i], label_splits[i],
                            model_options or {})
          if i > 0:
            del summaries[kept:]
          if i == 0:
            first_loss = loss
            first_losses = tf.get_collection('losses', scope)
            summary_deps.extend(
                tf.get_collection(tf.GraphKeys.UPDATE_OPS, scope))
          tf.get_variable_scope().reuse_variables()
          tower_grads.append(
              cifar10.optimizer(1.0, recipe, loss_scale)
              .compute_gradients(loss))
  summary_deps.append(add_loss_summaries(first_loss, first_losses))
  return tower_grads, first_loss, summary_deps


def add_loss_summaries(total_loss, losses):
  """cifar10.add_loss_summaries of tower 0's losses, named as without towers.

  The losses' moving averages take their variables' names from the losses'
  ops. Identities without the tower_0/ prefix give them cifar10_train.py's
  names (cross_entropy/avg, local3/weight_loss/avg, total_loss/avg), so that
  either trainer resumes the other's checkpoints. The summary tags, which
  drop the prefix anyway, stay the same.
  """
  def untowered(tensor):
    name = re.sub('^%s_[0-9]*/' % cifar10.TOWER_NAME, '', tensor.op.name)
    return tf.identity(tensor, name=name)

  with tf.name_scope(None):
    return cifar10.add_loss_summaries(untowered(total_loss),
                                      [untowered(l) for l in losses])
