"""A fast-training network for 32x32 images: a patch-whitening first layer.

The family of Page's and Jordan's fast CIFAR-10 networks: a 2x2 convolution
without padding whose filters are fixed at the whitening of the training
images' 2x2x3 patches (the 12 eigenvectors of their second-moment matrix,
each divided by sqrt(eigenvalue + WHITEN_EPS), and their negatives: 24
outputs), its biases trained for the first epochs only; GELU; three groups
of conv3x3 -> maxpool 2 -> batch norm -> GELU -> conv3x3 -> batch norm ->
GELU (convolutions without bias, their first in_channels filters the
identity; batch norm without scale); a max over what is left; a linear layer
without bias; the logits times 1/9.

whitened_cnn (widths 32/64/64) is the quick one, whitened_cnn_wide
(64/256/256, the published widths) the accurate one. Both are trained by
their recipe (RECIPES; docs/networks.md): full 32x32 images normalised per
channel, translated by up to 2 pixels and flipped by epoch, Nesterov SGD
with decoupled weight decay, a triangular rate and lookahead averaging
(fast_training.py).

The eigen-decomposition needs training images: trainers call prepare(split,
preprocessing_mode) before building the graph. It is kept in the
non-trainable variables whiten/eigenvalues and whiten/eigenvectors, so
evaluation, classification and resuming restore it from the checkpoint
without reading any data.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import numpy as np

from cifar10lib.base.compat import tf
from cifar10lib.base.errors import UserError
from cifar10lib.data import datasets
from cifar10lib.data import preprocessing
from cifar10lib.models import layers

WIDTHS = {'whitened_cnn': (32, 64, 64), 'whitened_cnn_wide': (64, 256, 256)}
PATCH = 2
WHITEN_EPS = 5e-4
WHITEN_IMAGES = 5000              # training images the patches come from
LOGIT_SCALE = 1.0 / 9.0
# PyTorch's momentum 0.6 (new = 0.4 old + 0.6 batch) is a decay of 0.4.
BATCH_NORM_DECAY = 0.4
# The published 1e-12; TensorFlow's fused batch norm, which is several times
# faster on CPU than the unfused ops, floors its epsilon at 1.001e-5.
BATCH_NORM_EPSILON = 1.001e-5
LABEL_SMOOTHING = 0.2
# GELU is computed in units of x / sqrt(2) (_scaled_gelu): the ops on either
# side of it take these factors in their own weights.
SQRT_HALF = 0.7071067811865476
LOG_TWO_OVER_SQRT_PI = 0.1207822376352452     # log(2 / sqrt(pi))

# The collections fast_training.py's optimizer reads: batch norm's offsets
# train at a higher rate; the whitening biases only in the first epochs.
BATCH_NORM_BIASES = 'batch_norm_biases'
WHITENING_BIASES = 'whitening_biases'
LABEL_SMOOTHING_KEY = 'label_smoothing'
# A boolean tensor, true while WHITENING_BIASES train: where the optimizer
# puts it, the first group's input gradient is computed only while true.
WHITENING_BIASES_TRAIN = 'whitening_biases_train'

_RECIPE = dict(optimizer='decoupled_nesterov', learning_rate=11.5,
               momentum=0.85, weight_decay=0.0153, epochs=10.0,
               num_epochs_per_decay=1.0, learning_rate_decay_factor=1.0)
RECIPES = {'whitened_cnn': _RECIPE, 'whitened_cnn_wide': _RECIPE}
# Flags of other groups whose defaults this network changes (cli.py).
FLAG_DEFAULTS = dict(batch_size=1024, preprocessing='channel_standardize',
                     augmentation='translate_flip', moving_average=False,
                     min_fraction_of_examples_in_queue=0.1)
FLAG_DEFAULTS = {'whitened_cnn': FLAG_DEFAULTS,
                 'whitened_cnn_wide': FLAG_DEFAULTS}
SIGNATURES = {'whitened_cnn': ('group3/conv2/weights', [3, 3, 64, 64]),
              'whitened_cnn_wide': ('group3/conv2/weights', [3, 3, 256, 256])}

# What prepare() computed for the graph about to be built.
_prepared = {}


def patches(images, size=PATCH):
  """Every size x size patch of images [n, h, w, c], flattened: [m, s*s*c].

  Flattened in (row, column, channel) order, the order of a conv2d kernel
  [size, size, c, out] reshaped to [size*size*c, out].
  """
  n, h, w, c = images.shape
  rows = [images[:, i:h - size + 1 + i, j:w - size + 1 + j, :]
          for i in range(size) for j in range(size)]
  return np.stack(rows, axis=3).reshape(-1, size * size * c)


def whitening(images):
  """(eigenvalues [12], eigenvectors [12, 12] as rows) of images' patches.

  The eigen-decomposition of the patches' second-moment matrix, largest
  eigenvalue first.
  """
  flat = patches(np.asarray(images, np.float64))
  moment = flat.T.dot(flat) / len(flat)
  values, vectors = np.linalg.eigh(moment)
  order = np.argsort(values)[::-1]
  return (values[order].astype(np.float32),
          vectors[:, order].T.astype(np.float32))


def whitening_kernel(eigenvalues, eigenvectors, eps=WHITEN_EPS):
  """The fixed first-layer filters [2, 2, 3, 24], a tensor.

  Row k of eigenvectors divided by sqrt(eigenvalue k + eps) is filter k,
  its negative filter k + 12.
  """
  scaled = eigenvectors / tf.expand_dims(tf.sqrt(eigenvalues + eps), 1)
  both = tf.concat([scaled, -scaled], 0)
  kernel = tf.reshape(both, [2 * PATCH * PATCH * 3, PATCH, PATCH, 3])
  return tf.transpose(kernel, [1, 2, 3, 0])


def prepare(split, preprocessing_mode):
  """Computes the whitening of split's first training images.

  They are normalised as the input pipeline normalises them (preprocessing
  mode's statistics of the whole split).
  """
  images = next(datasets.read_images(split, WHITEN_IMAGES))
  prepare_images(preprocessing.normalize_numpy(images, preprocessing_mode,
                                               split))


def prepare_images(images):
  """Computes the whitening of images, normalized as the network sees them."""
  _prepared['whitening'] = whitening(images)


def _gate(u):
  # 1 + erf(u): twice the standard normal's distribution function at
  # sqrt(2) u.
  return 1.0 + tf.math.erf(u)


def _gate_slope(u, gate):
  """d/du of u * gate(u), from the gate already computed at u."""
  return gate + u * tf.exp(LOG_TWO_OVER_SQRT_PI - tf.square(u))


@tf.custom_gradient
def _scaled_gelu(u):
  """sqrt(2) GELU(x) at x = sqrt(2) u: u (1 + erf(u)). GELU's exact form.

  GELU(x) = x/2 (1 + erf(x / sqrt(2))) costs five element-wise passes over
  its input. Taking u = x / sqrt(2) from the op before it (batch norm's
  scale, the whitening's kernel), and leaving the output's factor
  1 / sqrt(2) to the weights after it (the next convolution's, the logits'
  scale), leaves three; the hand-written gradient reuses the forward gate
  in six more, where TensorFlow's differentiation of the formula takes
  about ten. Those passes are most of this network's time outside its
  convolutions. (tf.nn.gelu is not in TensorFlow 1.15.)
  """
  gate = _gate(u)

  def grad(dy):
    return dy * _gate_slope(u, gate)
  return u * gate, grad


def _uniform(fan_in):
  # PyTorch's default initialisation, which the recipe was tuned with.
  bound = 1.0 / np.sqrt(fan_in)
  return tf.random_uniform_initializer(-bound, bound)


def _conv_weights(name, in_channels, filters):
  with tf.variable_scope(name):
    # The first in_channels filters pass their channel through.
    identity = np.zeros([3, 3, in_channels, filters], np.float32)
    keep = np.ones_like(identity)
    for c in range(min(in_channels, filters)):
      keep[:, :, :, c] = 0.0
      identity[1, 1, c, c] = 1.0

    def initial(shape, dtype=None, partition_info=None):
      del dtype, partition_info
      return _uniform(9 * in_channels)(shape) * keep + identity
    return layers.variable_on_cpu('weights', [3, 3, in_channels, filters],
                                  initial, tf.float32)


def _conv(x, name, filters):
  """The convolution of GELU's output, given as sqrt(2) GELU(x).

  The batch norm after it would absorb the factor; taking it back keeps
  the moving statistics, and so the checkpoints, those of plain GELU.
  """
  kernel = _conv_weights(name, x.shape.as_list()[-1], filters)
  return tf.nn.conv2d(x, tf.cast(kernel, x.dtype) * SQRT_HALF, [1, 1, 1, 1],
                      'SAME')


def _batch_norm(x, name, train):
  """Batch norm without scale, times 1 / sqrt(2): what _scaled_gelu takes."""
  channels = x.shape.as_list()[-1]
  with tf.variable_scope(name):
    beta = layers.variable_on_cpu('beta', [channels], tf.zeros_initializer(),
                                  tf.float32)
    mean = layers.variable_on_cpu('moving_mean', [channels],
                                  tf.zeros_initializer(), tf.float32, False)
    variance = layers.variable_on_cpu('moving_variance', [channels],
                                      tf.ones_initializer(), tf.float32, False)
    if train and beta not in tf.get_collection(BATCH_NORM_BIASES):
      tf.add_to_collection(BATCH_NORM_BIASES, beta)
    # The output's factor, in the fused op's scale and offset, is free.
    scale = tf.fill([channels], SQRT_HALF)
    offset = beta * SQRT_HALF
    if train:
      y, batch_mean, batch_variance = tf.nn.fused_batch_norm(
          x, scale, offset, epsilon=BATCH_NORM_EPSILON, is_training=True)
      for moving, batch in ((mean, batch_mean), (variance, batch_variance)):
        tf.add_to_collection(tf.GraphKeys.UPDATE_OPS, tf.assign_sub(
            moving, (moving - batch) * (1.0 - BATCH_NORM_DECAY)))
      return y
    y, _, _ = tf.nn.fused_batch_norm(x, scale, offset, mean, variance,
                                     epsilon=BATCH_NORM_EPSILON,
                                     is_training=False)
    return y


def _whitening_variables(train):
  """The whitening layer's (kernel [2, 2, 3, 24], biases [24])."""
  with tf.variable_scope('whiten'):
    values, vectors = _prepared.get('whitening', (None, None))
    if train and values is None:
      raise UserError('the whitened networks need the training images: call '
                      'models.prepare before building them for training')
    count = PATCH * PATCH * 3
    values = np.ones(count, np.float32) if values is None else values
    vectors = np.eye(count, dtype=np.float32) if vectors is None else vectors
    eigenvalues = layers.variable_on_cpu(
        'eigenvalues', None, tf.constant(values), tf.float32, False)
    eigenvectors = layers.variable_on_cpu(
        'eigenvectors', None, tf.constant(vectors), tf.float32, False)
    biases = layers.variable_on_cpu('biases', [2 * count],
                                    tf.zeros_initializer(), tf.float32)
    if train and biases not in tf.get_collection(WHITENING_BIASES):
      tf.add_to_collection(WHITENING_BIASES, biases)
    return whitening_kernel(eigenvalues, eigenvectors), biases


def _whiten_then_conv(images, kernel, biases, weights):
  """group1/conv1 of GELU(whitening(images) + biases).

  The whitening's biases are the only weights below the first group, and
  they train for the first epochs only (WHITENING_BIASES_TRAIN, set by the
  optimizer): after those, their gradient -- a backward convolution at full
  resolution and the whitening GELU's backward pass, about a fifth of a
  step -- is not computed at all.
  """
  dtype = images.dtype
  strides = [1, 1, 1, 1]

  @tf.custom_gradient
  def block(images, kernel, biases, weights):
    u = tf.nn.bias_add(tf.nn.conv2d(images, kernel, strides, 'VALID'),
                       biases)
    gate = _gate(u)
    hidden = u * gate
    out = tf.nn.conv2d(hidden, weights, strides, 'SAME')

    def grad(dy):
      d_weights = tf.nn.conv2d_backprop_filter(hidden, tf.shape(weights), dy,
                                               strides, 'SAME')

      def d_biases():
        d_hidden = tf.nn.conv2d_backprop_input(tf.shape(hidden), weights, dy,
                                               strides, 'SAME')
        return tf.reduce_sum(d_hidden * _gate_slope(u, gate), [0, 1, 2])
      train = tf.get_collection(WHITENING_BIASES_TRAIN)
      d_b = (tf.cond(train[-1], d_biases, lambda: tf.zeros_like(biases))
             if train else d_biases())
      # The images and the fixed whitening take no gradient.
      return None, None, d_b, d_weights
    return out, grad
  # The whitening gives u = x / sqrt(2) for the scaled GELU, and the
  # convolution takes back the factor its output leaves (_scaled_gelu).
  return block(images, tf.cast(kernel, dtype) * SQRT_HALF,
               tf.cast(biases, dtype) * SQRT_HALF,
               tf.cast(weights, dtype) * SQRT_HALF)


def _network(name, images, num_classes, train):
  if images.shape.as_list()[1:] != [32, 32, 3]:
    raise UserError('--model=%s takes full 32x32 colour images: give '
                    '--augmentation=translate_flip (its default)' % name)
  if train:
    tf.add_to_collection(LABEL_SMOOTHING_KEY, LABEL_SMOOTHING)
  kernel, biases = _whitening_variables(train)
  for g, width in enumerate(WIDTHS[name], 1):
    with tf.variable_scope('group%d' % g):
      if g == 1:
        x = _whiten_then_conv(images, kernel, biases, _conv_weights(
            'conv1', 2 * PATCH * PATCH * 3, width))
      else:
        x = _conv(x, 'conv1', width)
      x = tf.nn.max_pool(x, [1, 2, 2, 1], [1, 2, 2, 1], 'VALID')
      x = _scaled_gelu(_batch_norm(x, 'norm1', train))
      x = _conv(x, 'conv2', width)
      x = _scaled_gelu(_batch_norm(x, 'norm2', train))
    # What GELU gave: computed only when the summaries are.
    layers.activation_summary(x * SQRT_HALF, 'group%d' % g)
  # The max commutes with the positive factor, left to the logits' scale.
  x = tf.reduce_max(x, [1, 2])
  with tf.variable_scope('linear'):
    weights = layers.variable_on_cpu(
        'weights', [WIDTHS[name][-1], num_classes],
        _uniform(WIDTHS[name][-1]), tf.float32)
    logits = tf.matmul(x, tf.cast(weights, x.dtype)) * (LOGIT_SCALE *
                                                          SQRT_HALF)
  layers.activation_summary(logits, 'linear')
  return logits


def whitened_cnn(images, num_classes, train=True):
  """Returns the quick whitened network's logits [batch, num_classes]."""
  return _network('whitened_cnn', images, num_classes, train)


def whitened_cnn_wide(images, num_classes, train=True):
  """Returns the wide whitened network's logits [batch, num_classes]."""
  return _network('whitened_cnn_wide', images, num_classes, train)
