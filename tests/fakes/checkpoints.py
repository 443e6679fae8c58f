"""Checkpoints and event files: written, read, copied and damaged as tests
need. Each helper imports TensorFlow only when called."""
import glob
import os
import re
import shutil

import numpy as np


def _tf():
  from cifar10lib.base.compat import tf   # graph mode, as the scripts run it
  return tf


SHADOW = '/ExponentialMovingAverage'


def model_shapes(moving_averages=False):
  """{name: shape} of the model's variables, from the model itself.

  With moving_averages, their shadows too: everything cifar10_train.py saves
  and cifar10_eval.py restores, apart from global_step.
  """
  from cifar10lib.training import cifar10
  tf = _tf()
  with tf.Graph().as_default():
    global_step = tf.train.get_or_create_global_step()
    images = tf.placeholder(tf.float32, [None, 24, 24, 3])
    cifar10.inference(images)
    if moving_averages:
      tf.train.ExponentialMovingAverage(
          cifar10.MOVING_AVERAGE_DECAY, global_step).apply(
              tf.trainable_variables())
    return {v.op.name: v.shape.as_list() for v in tf.global_variables()
            if v.op.name != 'global_step'}


def zeros(shapes):
  """{name: float32 zeros of that shape}."""
  return {name: np.zeros(shape, np.float32) for name, shape in shapes.items()}


def write_checkpoint(prefix, tensors):
  """Saves {name: numpy value} as a checkpoint at prefix, made the latest."""
  tf = _tf()
  prefix = str(prefix)
  if not os.path.isdir(os.path.dirname(prefix)):
    os.makedirs(os.path.dirname(prefix))
  with tf.Graph().as_default():
    variables = {name: tf.Variable(value, name='v%d' % i)
                 for i, (name, value) in enumerate(sorted(tensors.items()))}
    saver = tf.train.Saver(variables)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      return saver.save(sess, prefix)


def write_model_checkpoint(prefix, raw=None, shadow=None, step=0):
  """A checkpoint of the model at prefix with the values a test designs.

  raw and shadow map variable names to values; every other variable is 0.
  Without shadow the checkpoint has no moving averages. global_step is step.
  """
  shapes = model_shapes()
  tensors = zeros(shapes)
  tensors.update(raw or {})
  if shadow is not None:
    averages = zeros(shapes)
    averages.update(shadow)
    tensors.update((name + SHADOW, value) for name, value in averages.items())
  tensors['global_step'] = np.int64(step)
  return write_checkpoint(prefix, tensors)


def read_checkpoint(path):
  """{name: value} of every tensor of a checkpoint (or a directory's latest)."""
  tf = _tf()
  path = str(path)
  if os.path.isdir(path):
    path = tf.train.latest_checkpoint(path)
  reader = tf.train.NewCheckpointReader(path)
  return {name: reader.get_tensor(name)
          for name in reader.get_variable_to_shape_map()}


def checkpoint_step(checkpoint):
  """Reads every tensor of checkpoint; returns its global_step."""
  return int(read_checkpoint(checkpoint)['global_step'])


def latest_step(train_dir):
  """(latest checkpoint, its step), every tensor read, the name checked."""
  tf = _tf()
  latest = tf.train.latest_checkpoint(str(train_dir))
  assert latest, 'no checkpoint in %s: %s' % (train_dir,
                                              os.listdir(str(train_dir)))
  step = checkpoint_step(latest)
  assert latest.endswith('model.ckpt-%d' % step), (latest, step)
  return latest, step


def recorded_checkpoint(train_dir):
  """The latest checkpoint as train_dir/checkpoint names it (no TensorFlow)."""
  with open(os.path.join(str(train_dir), 'checkpoint')) as f:
    return re.search(r'^model_checkpoint_path: "(.*)"$', f.read(),
                     re.M).group(1)


def truncate_data_file(checkpoint):
  """Cuts the largest data file of checkpoint in half, as a full disk would."""
  directory = os.path.dirname(checkpoint)
  data = [os.path.join(directory, n) for n in os.listdir(directory)
          if n.startswith(os.path.basename(checkpoint) + '.data-')]
  biggest = max(data, key=os.path.getsize)
  with open(biggest, 'r+b') as f:
    f.truncate(os.path.getsize(biggest) // 2)


def copy_train_dir(source, target):
  """Copies a training directory, its `checkpoint` file made relative.

  TensorFlow records absolute paths there, so a plain copy would still name
  (and a test would then damage) the original's files. Returns the copy's
  latest checkpoint.
  """
  tf = _tf()
  shutil.copytree(str(source), str(target))
  state = tf.train.get_checkpoint_state(str(target))
  tf.train.update_checkpoint_state(
      str(target), os.path.basename(state.model_checkpoint_path),
      [os.path.basename(p) for p in state.all_model_checkpoint_paths])
  latest = tf.train.latest_checkpoint(str(target))
  assert os.path.dirname(latest) == str(target)
  return latest


def copy_checkpoint(checkpoint, new_step):
  """Copies checkpoint's files as model.ckpt-new_step; returns that path."""
  directory, base = os.path.split(checkpoint)
  target = os.path.join(directory, 'model.ckpt-%d' % new_step)
  for name in os.listdir(directory):
    if name.startswith(base + '.'):
      shutil.copy(os.path.join(directory, name), target + name[len(base):])
  return target


def scalar_events(log_dir):
  """{tag: [(step, value)]} of every scalar in log_dir's event files."""
  tf = _tf()
  scalars = {}
  for path in glob.glob(os.path.join(str(log_dir), 'events.out.tfevents.*')):
    for event in tf.train.summary_iterator(path):
      for value in event.summary.value:
        if value.WhichOneof('value') == 'simple_value':
          scalars.setdefault(value.tag, []).append(
              (event.step, value.simple_value))
  return scalars
