"""Layer helpers shared by every network: variables, weight decay, batch
normalization, locally connected layers and summaries with exact tags, and
the building blocks of the networks in models/ (convolution with biases or
with batch normalization, fully connected, pooling, dropout).

Variables live on the CPU, so that the towers of the multi-GPU trainer share
one copy; a weight-decay term joins the `losses` collection, which
cifar10.loss adds up.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import re

from cifar10lib.base.compat import tf

BATCH_NORM_DECAY = 0.99           # of the moving mean and variance, at most
BATCH_NORM_EPSILON = 1e-3


def _op_name(tag):
  return re.sub(r'[^\w./-]', '_', tag)


def scalar_summary(tag, value):
  """A scalar summary whose TensorBoard tag is exactly `tag`.

  tf.summary.scalar derives its tag from a fresh op name, so `total_loss`
  would become `total_loss_1` (the loss op owns that name) and ' (raw)'
  would become '__raw_'. The raw op takes the tag as given.
  """
  op = tf.raw_ops.ScalarSummary(tags=tag, values=value, name=_op_name(tag))
  tf.add_to_collection(tf.GraphKeys.SUMMARIES, op)
  return op


def histogram_summary(tag, values):
  """A histogram summary whose tag is exactly `tag` (see scalar_summary)."""
  op = tf.raw_ops.HistogramSummary(tag=tag, values=values, name=_op_name(tag))
  tf.add_to_collection(tf.GraphKeys.SUMMARIES, op)
  return op


def activation_summary(x, layer):
  """Histogram and sparsity summaries of a layer's activations.

  They are made at the root name scope, so their tags are `<layer>/...` in
  every script, without the `tower_N/` prefix of multi-device training.
  """
  with tf.name_scope(None):
    histogram_summary(layer + '/activations', x)
    scalar_summary(layer + '/sparsity', tf.nn.zero_fraction(x))


def variable_on_cpu(name, shape, initializer, dtype, trainable=True):
  with tf.device('/cpu:0'):
    return tf.get_variable(name, shape, initializer=initializer, dtype=dtype,
                           trainable=trainable)


def variable_with_weight_decay(name, shape, stddev, wd, dtype):
  """A truncated-normal variable whose `wd * l2_loss` joins the `losses`."""
  var = variable_on_cpu(
      name, shape, tf.truncated_normal_initializer(stddev=stddev, dtype=dtype),
      dtype)
  if wd is not None:
    weight_decay = tf.multiply(tf.nn.l2_loss(var), wd, name='weight_loss')
    tf.add_to_collection('losses', weight_decay)
  return var


def _moving_decay(dtype):
  """BATCH_NORM_DECAY ramped with the global step (see batch_norm).

  Every trainer makes the global step before the model; a graph without
  one (a test's) keeps the fixed decay.
  """
  step = tf.train.get_global_step()
  if step is None:
    return BATCH_NORM_DECAY
  step = tf.cast(step, tf.float32)
  return tf.cast(tf.minimum(BATCH_NORM_DECAY, (1.0 + step) / (10.0 + step)),
                 dtype)


def batch_norm(x, axes, train, dtype):
  """Batch normalization of x over axes, with a learned offset and scale.

  Training normalizes with the batch's statistics and adds the ops updating
  the moving mean and variance to the UPDATE_OPS collection (the trainers
  run them with the train op); evaluation normalizes with the moving ones,
  which are variables and so are saved in checkpoints.

  The moving statistics' decay ramps up with the global step, as the
  weights' moving average does with num_updates: min(BATCH_NORM_DECAY,
  (1 + step) / (10 + step)). A fixed 0.99 would keep two thirds of the
  initial zeros and ones after 100 steps, and a short run would evaluate
  at chance; from step 890 on the decay is 0.99, as before.
  """
  shape = x.shape.as_list()[len(axes):]
  beta = variable_on_cpu('beta', shape, tf.zeros_initializer(), dtype)
  gamma = variable_on_cpu('gamma', shape, tf.ones_initializer(), dtype)
  moving_mean = variable_on_cpu('moving_mean', shape, tf.zeros_initializer(),
                                dtype, trainable=False)
  moving_variance = variable_on_cpu('moving_variance', shape,
                                    tf.ones_initializer(), dtype,
                                    trainable=False)
  if train:
    mean, variance = tf.nn.moments(x, axes)
    decay = _moving_decay(moving_mean.dtype.base_dtype)
    for moving, batch in ((moving_mean, mean), (moving_variance, variance)):
      tf.add_to_collection(tf.GraphKeys.UPDATE_OPS, tf.assign_sub(
          moving, (moving - batch) * (1.0 - decay)))
  else:
    mean, variance = moving_mean, moving_variance
  return tf.nn.batch_normalization(x, mean, variance, beta, gamma,
                                   BATCH_NORM_EPSILON)


def locally_connected(x, depth, size, stddev, wd, dtype):
  """A SAME-padded, stride-1 convolution whose filters differ per position.

  x is [batch, height, width, channels]. The weights variable is
  [height, width, size, size, channels, depth]: output position (i, j) sees
  the size x size neighbourhood of input position (i, j) through its own
  filters. Returns [batch, height, width, depth], without biases.
  """
  _, height, width, channels = x.shape.as_list()
  weights = variable_with_weight_decay(
      'weights', [height, width, size, size, channels, depth], stddev, wd,
      dtype)
  patch = size * size * channels
  # Each patch comes out flattened in (row, column, channel) order, the
  # order of a position's weights reshaped below.
  patches = tf.extract_image_patches(x, ksizes=[1, size, size, 1],
                                     strides=[1, 1, 1, 1], rates=[1, 1, 1, 1],
                                     padding='SAME')
  patches = tf.transpose(tf.reshape(patches, [-1, height * width, patch]),
                         [1, 0, 2])
  # One matrix product per position: [positions, batch, depth].
  out = tf.matmul(patches, tf.reshape(weights, [height * width, patch, depth]))
  return tf.reshape(tf.transpose(out, [1, 0, 2]), [-1, height, width, depth])


def flatten(x):
  flat_size = 1
  for dim in x.shape.as_list()[1:]:
    flat_size *= dim
  return tf.reshape(x, [-1, flat_size])


# --- Building blocks of the networks in models/ -------------------------------

def he_stddev(shape):
  """He et al.'s sqrt(2 / fan_in) for weights shaped [..., fan_in, out]."""
  fan_in = 1
  for dim in shape[:-1]:
    fan_in *= dim
  return (2.0 / fan_in) ** 0.5


def weights(shape, wd, dtype, stddev=None):
  """A `weights` variable, Gaussian (He's stddev unless given), decayed by wd.

  A plain Gaussian, not a truncated one: He's stddev is derived for it.
  """
  stddev = he_stddev(shape) if stddev is None else stddev
  var = variable_on_cpu('weights', shape,
                        tf.random_normal_initializer(stddev=stddev), dtype)
  if wd:
    tf.add_to_collection('losses', tf.multiply(tf.nn.l2_loss(var), wd,
                                               name='weight_loss'))
  return var


def biases(units, value, dtype):
  return variable_on_cpu('biases', [units], tf.constant_initializer(value),
                         dtype)


def conv(x, name, filters, size, wd, stride=1, stddev=None, bias=0.0,
         relu=True, summary=True):
  """A SAME-padded size x size convolution with biases, then ReLU."""
  with tf.variable_scope(name):
    kernel = weights([size, size, x.shape.as_list()[-1], filters], wd,
                     x.dtype, stddev)
    out = tf.nn.conv2d(x, kernel, [1, stride, stride, 1], padding='SAME')
    out = tf.nn.bias_add(out, biases(filters, bias, x.dtype))
    if relu:
      out = tf.nn.relu(out, name=name)
  if summary:
    activation_summary(out, name)
  return out


def conv_bn(x, name, filters, size, wd, train, stride=1, relu=True):
  """Convolution (He's init, no biases), batch normalization, then ReLU.

  Batch normalization's offset does the biases' work.
  """
  with tf.variable_scope(name):
    kernel = weights([size, size, x.shape.as_list()[-1], filters], wd,
                     x.dtype)
    out = tf.nn.conv2d(x, kernel, [1, stride, stride, 1], padding='SAME')
    out = batch_norm(out, [0, 1, 2], train, x.dtype)
    if relu:
      out = tf.nn.relu(out)
  return out


def fully_connected(x, name, units, wd, stddev=None, bias=0.0, relu=True,
                    summary=True):
  """x [batch, n] times weights [n, units], plus biases, then ReLU."""
  with tf.variable_scope(name):
    w = weights([x.shape.as_list()[1], units], wd, x.dtype, stddev)
    out = tf.add(tf.matmul(x, w), biases(units, bias, x.dtype),
                 name=None if relu else name)
    if relu:
      out = tf.nn.relu(out, name=name)
  if summary:
    activation_summary(out, name)
  return out


def max_pool(x, name, size, stride, padding='SAME'):
  return tf.nn.max_pool(x, ksize=[1, size, size, 1],
                        strides=[1, stride, stride, 1], padding=padding,
                        name=name)


def global_average_pool(x, name):
  """[batch, height, width, channels] -> [batch, channels]."""
  return tf.reduce_mean(x, [1, 2], name=name)


def dropout(x, keep_prob, train, name):
  """Dropout in training only: evaluation sees every unit."""
  if train and keep_prob < 1.0:
    return tf.nn.dropout(x, rate=1.0 - keep_prob, name=name)
  return x
