"""Trains the CIFAR-10 model on several devices with synchronous updates.

    python cifar10_multi_gpu_train.py --num_gpus=2

One model replica ("tower") per device computes the loss and gradients of its
own batch; the gradients are averaged on the CPU, where the shared variables
live, and applied once per step. All towers dequeue from one input pipeline.
On a machine with fewer GPUs than asked, soft placement runs the rest on the
CPU; --tower_device=cpu puts the towers on that many CPU devices instead, to
try several towers on a machine without GPUs.

As with cifar10_train.py, checkpoints and summaries go to --train_dir, where
cifar10_eval.py and TensorBoard pick them up; a second start resumes from the
latest checkpoint there, and Ctrl-C or SIGTERM stops after the current step
with a checkpoint at that step.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import re

from absl import flags

import cli  # before anything imports TensorFlow: it quiets its start-up
import cifar10
from compat import tf
import precision as precision_lib
import preprocessing
import schedules
import training

FLAGS = flags.FLAGS
cli.define_flags('data', 'download', 'split', 'batch', 'model', 'training',
                 'schedule', 'preprocessing', 'session')
flags.DEFINE_integer('num_gpus', 1, 'How many GPUs (towers) to use.',
                     lower_bound=1)
flags.DEFINE_enum('tower_device', 'gpu', ['gpu', 'cpu'],
                  'Device type of the towers: "gpu", or "cpu" to run '
                  '--num_gpus towers on as many CPU devices.')


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


def gpus_found():
  return len(tf.config.experimental.list_physical_devices('GPU'))


def tower_devices(num_towers, device_type):
  return ['/%s:%d' % (device_type, i) for i in range(num_towers)]


class _PlacementHook(tf.train.SessionRunHook):
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


def train(split):
  """Builds the multi-tower graph and trains it on split."""
  num_towers = FLAGS.num_gpus
  found = gpus_found()
  devices = tower_devices(num_towers, FLAGS.tower_device)
  print('Found %d GPU(s); placing %d tower(s) on %s%s.' % (
      found, num_towers, ', '.join(devices),
      ' (missing GPUs fall back to the CPU by soft placement)'
      if FLAGS.tower_device == 'gpu' and found < num_towers else ''),
        flush=True)
  recipe = cli.recipe()
  schedule = cli.schedule()
  with training.new_graph(FLAGS.seed), tf.device('/cpu:0'):
    global_step = tf.train.get_or_create_global_step()
    examples_per_step = FLAGS.batch_size * num_towers
    lr = cifar10.learning_rate(global_step, split.num_examples,
                               examples_per_step, recipe, schedule)
    mean = preprocessing.mean_variable(FLAGS.preprocessing, split)
    images, labels = cli.distorted_inputs(split, examples_per_step, mean)
    # One loss scale for all towers: apply_gradients checks their averaged
    # gradients against it.
    scale = precision_lib.loss_scale(cli.precision())
    tower_grads, first_loss, deps = build_towers(
        images, labels, num_towers, devices, cli.model_options(), recipe,
        scale)
    grads = average_gradients(tower_grads)
    train_op = cifar10.apply_gradients(grads, global_step, lr, recipe,
                                       dependencies=deps, loss_scale=scale)
    device_count = ({'CPU': num_towers} if FLAGS.tower_device == 'cpu'
                    else {})
    config = cli.session_config(allow_soft_placement=True,
                                device_count=device_count)
    training.run_training(train_op, first_loss, examples_per_step,
                          cli.loop_options(), config,
                          hooks=[_PlacementHook(num_towers)] +
                          schedules.training_hooks(
                              schedule, FLAGS.train_dir,
                              split.num_examples / examples_per_step,
                              cli.validator(schedule, mean)),
                          examples_per_epoch=cli.epoch_examples(split),
                          start_line=cli.start_line(split, FLAGS.train_dir))


if __name__ == '__main__':
  cli.run_trainer(train)
