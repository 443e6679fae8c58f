"""The whitened networks' hand-written gradients against TensorFlow's own.

GELU's gradient reuses its forward gate; the network computes GELU in units
of x / sqrt(2) that the weights around it take back, and gives the plain
formulas' logits; the first group's block computes the whitening biases'
gradient only while the recipe trains them (its first 3 epochs): before,
it equals what TensorFlow's automatic differentiation of the plain formula
gives; after, it is zero and the backward convolution it needs is not run
at all.
"""
import math

import numpy as np

from cifar10lib.base.compat import tf
from cifar10lib.models import whitened_cnn
from cifar10lib.training import cifar10
from cifar10lib.training import fast_training

BATCH, EPOCH_EXAMPLES = 4, 40          # 10 steps an epoch
RECIPE = cifar10.Recipe(fast_training.NAME, 11.5, 0.85, 1.0, 1.0,
                        epochs=6.0, weight_decay=0.0153)


def test_scaled_gelu_and_its_gradient_match_the_normal_distribution():
  # GELU(x) = x cdf(x); the network computes sqrt(2) GELU(sqrt(2) u).
  x = np.linspace(-4.0, 4.0, 81)
  erf = np.vectorize(math.erf)
  cdf = 0.5 * (1.0 + erf(x / math.sqrt(2.0)))
  pdf = np.exp(-0.5 * x ** 2) / math.sqrt(2.0 * math.pi)
  with tf.Graph().as_default(), tf.Session() as sess:
    u = tf.constant((x / math.sqrt(2.0)).astype(np.float32))
    y = whitened_cnn._scaled_gelu(u)
    (dy,) = tf.gradients(y * tf.constant(3.0), [u])
    got_y, got_dy = sess.run([y, dy])
  np.testing.assert_allclose(got_y, math.sqrt(2.0) * x * cdf, rtol=1e-5,
                             atol=1e-6)
  # d/du sqrt(2) GELU(sqrt(2) u) = 2 GELU'(x) = 2 (cdf + x pdf).
  np.testing.assert_allclose(got_dy, 3.0 * 2.0 * (cdf + x * pdf), rtol=1e-5,
                             atol=1e-6)


def _plain_gelu(x):
  return 0.5 * x * (1.0 + tf.math.erf(x / np.sqrt(2.0)))


def _plain_network(images, width):
  """whitened_cnn's logits from its own variables, by the plain formulas:
  GELU as written, batch norm from the batch's moments."""
  def var(name):
    with tf.variable_scope('', reuse=True):
      return tf.get_variable(name)

  def norm(x, name):
    mean, variance = tf.nn.moments(x, [0, 1, 2])
    return ((x - mean) * tf.rsqrt(variance + whitened_cnn.BATCH_NORM_EPSILON)
            + var(name + '/beta'))

  def conv(x, name):
    return tf.nn.conv2d(x, var(name + '/weights'), [1, 1, 1, 1], 'SAME')

  kernel = whitened_cnn.whitening_kernel(var('whiten/eigenvalues'),
                                         var('whiten/eigenvectors'))
  x = _plain_gelu(tf.nn.conv2d(images, kernel, [1, 1, 1, 1], 'VALID') +
                  var('whiten/biases'))
  for g in range(1, len(width) + 1):
    x = tf.nn.max_pool(conv(x, 'group%d/conv1' % g), [1, 2, 2, 1],
                       [1, 2, 2, 1], 'VALID')
    x = _plain_gelu(norm(x, 'group%d/norm1' % g))
    x = _plain_gelu(norm(conv(x, 'group%d/conv2' % g), 'group%d/norm2' % g))
  return tf.matmul(tf.reduce_max(x, [1, 2]), var('linear/weights')) / 9.0


def test_network_gives_the_logits_of_the_plain_formulas():
  # (Its gradients are checked piecewise: a max-pool whose two largest
  # inputs differ by rounding routes a gradient either way.)
  rng = np.random.RandomState(1)
  images = rng.normal(size=[BATCH, 32, 32, 3]).astype(np.float32)
  whitened_cnn.prepare_images(images)
  with tf.Graph().as_default(), tf.Session() as sess:
    tf.train.get_or_create_global_step()
    logits = whitened_cnn.whitened_cnn(tf.constant(images), 10, train=True)
    expected = _plain_network(tf.constant(images),
                              whitened_cnn.WIDTHS['whitened_cnn'])
    sess.run(tf.global_variables_initializer())
    # Nonzero offsets everywhere, so that no GELU is symmetric around zero.
    for v in tf.trainable_variables():
      if 'beta' in v.name or 'biases' in v.name:
        v.load(rng.normal(size=v.shape.as_list()).astype(np.float32), sess)
    got, want = sess.run([logits, expected])
  assert np.abs(want).max() > 0
  np.testing.assert_allclose(got, want, rtol=1e-4,
                             atol=1e-4 * np.abs(want).max())


def _whitening_gradient(step):
  """(the network's whitening-bias and group1/conv1 gradients at step, the
  same from TensorFlow's differentiation of the plain formula, how many
  backward convolutions for an input the network's gradient ran)."""
  rng = np.random.RandomState(0)
  images = rng.normal(size=[BATCH, 32, 32, 3]).astype(np.float32)
  whitened_cnn.prepare_images(images)
  with tf.Graph().as_default(), tf.Session() as sess:
    global_step = tf.train.get_or_create_global_step()
    cifar10.learning_rate(global_step, EPOCH_EXAMPLES, BATCH, RECIPE)
    logits = whitened_cnn.whitened_cnn(tf.constant(images), 10, train=True)
    loss = tf.reduce_sum(tf.square(logits))
    with tf.variable_scope('', reuse=True):
      biases = tf.get_variable('whiten/biases')
      weights = tf.get_variable('group1/conv1/weights')
    grads = tf.gradients(loss, [biases, weights])
    sess.run(tf.global_variables_initializer())
    # Nonzero biases, so that the GELUs are not symmetric around zero.
    biases.load(rng.normal(size=[24]).astype(np.float32), sess)
    global_step.load(step, sess)
    meta = tf.RunMetadata()
    got = sess.run(grads, options=tf.RunOptions(
        trace_level=tf.RunOptions.FULL_TRACE), run_metadata=meta)
    ran = sum(node.node_name.endswith('Conv2DBackpropInput')
              for dev in meta.step_stats.dev_stats for node in dev.node_stats)
    # The reference: the same first layers with plain ops, and TensorFlow's
    # gradient of them, fed the network's own values below and above.
    with tf.variable_scope('', reuse=True):
      kernel = whitened_cnn.whitening_kernel(
          tf.get_variable('whiten/eigenvalues'),
          tf.get_variable('whiten/eigenvectors'))
    hidden = _plain_gelu(tf.nn.bias_add(tf.nn.conv2d(
        tf.constant(images), kernel, [1, 1, 1, 1], 'VALID'), biases))
    out = tf.nn.conv2d(hidden, weights, [1, 1, 1, 1], 'SAME')
    # The block's output is what group1's max-pool takes.
    block = [op.inputs[0] for op in tf.get_default_graph().get_operations()
             if op.type == 'MaxPool' and op.name.startswith('group1/')][0]
    (upstream,) = tf.gradients(loss, [block])
    reference = tf.gradients(out, [biases, weights], grad_ys=upstream)
    expected = sess.run(reference)
  return got, expected, ran


def test_whitening_biases_gradient_only_while_they_train():
  got, expected, ran_before = _whitening_gradient(step=5)      # epoch 0.5
  for g, e in zip(got, expected):
    assert np.abs(e).max() > 0
    np.testing.assert_allclose(g, e, rtol=2e-4, atol=1e-5)
  got, expected, ran_after = _whitening_gradient(step=31)      # epoch 3.1
  assert np.abs(expected[0]).max() > 0      # it would not be zero
  np.testing.assert_array_equal(got[0], np.zeros(24, np.float32))
  np.testing.assert_allclose(got[1], expected[1], rtol=2e-4, atol=1e-5)
  # Fewer backward convolutions ran: not the one into the first group.
  assert ran_after < ran_before
