"""The network of cifar10: the tutorial's graph and loss, and the model options.

The default graph must be the tutorial's, variable for variable and op for
op; each option (dropout, no LRN, batch normalization, locally connected top
layers) is built in-process with explicit arguments (the flags' defaults
stay the tutorial's). Expected values are computed here in numpy from values
read back out of the graph (weights, logits), never taken from the code
under test.
"""
import numpy as np

from cifar10lib.base.compat import tf
from cifar10lib.models import layers
from cifar10lib.training import cifar10

BATCH = 8
OPTIONS_BATCH = 16    # the model options' tests
TUTORIAL_TRAINABLE = [
    ('conv1/weights', [5, 5, 3, 64]), ('conv1/biases', [64]),
    ('conv2/weights', [5, 5, 64, 64]), ('conv2/biases', [64]),
    ('local3/weights', [2304, 384]), ('local3/biases', [384]),
    ('local4/weights', [384, 192]), ('local4/biases', [192]),
    ('softmax_linear/weights', [192, 10]), ('softmax_linear/biases', [10]),
]
NUM_PARAMETERS = 1068298
WEIGHT_DECAY = 0.004
# The initial weights' truncated-normal stddev per layer.
INIT_STDDEV = {'conv1': 5e-2, 'conv2': 5e-2, 'local3': 0.04, 'local4': 0.04,
               'softmax_linear': 1 / 192.0}
# The standard deviation of a normal truncated at two standard deviations.
TRUNCATED_STD_FACTOR = 0.8796
# The tutorial's variables, and those its training adds: the moving averages
# of the weights and of the losses, and the global step. Nothing else.
TUTORIAL_VARIABLES = sorted(
    ['global_step', 'cross_entropy/avg', 'total_loss/avg',
     'local3/weight_loss/avg', 'local4/weight_loss/avg'] +
    ['%s/%s%s' % (layer, kind, shadow)
     for layer in ('conv1', 'conv2', 'local3', 'local4', 'softmax_linear')
     for kind in ('weights', 'biases')
     for shadow in ('', '/ExponentialMovingAverage')])
# Op types that only the options bring.
OPTION_OP_TYPES = {'ApplyMomentum', 'ApplyAdam', 'ApplyAdagrad',
                   'ApplyRMSProp', 'ExtractImagePatches', 'BatchMatMul',
                   'BatchMatMulV2', 'BatchMatMulV3'}


def _fixed_batch(seed=0):
  rng = np.random.RandomState(seed)
  images = rng.normal(size=(BATCH, 24, 24, 3)).astype(np.float32)
  labels = rng.randint(0, 10, size=BATCH).astype(np.int32)
  return images, labels


def _numpy_cross_entropy(logits, labels):
  logits = logits.astype(np.float64)
  shifted = logits - logits.max(axis=1, keepdims=True)
  log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
  return -log_softmax[np.arange(len(labels)), labels].mean()


def test_inference_builds_the_tutorial_network():
  with tf.Graph().as_default():
    images = tf.placeholder(tf.float32, [BATCH, 24, 24, 3])
    logits = cifar10.inference(images)
    assert logits.shape.as_list() == [BATCH, 10]
    variables = tf.trainable_variables()
    assert [(v.op.name, v.shape.as_list()) for v in variables] == (
        TUTORIAL_TRAINABLE)
    assert sum(int(np.prod(v.shape.as_list())) for v in variables) == (
        NUM_PARAMETERS)
    for v in variables:
      assert v.device.lower().endswith('cpu:0'), (v.op.name, v.device)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      out = sess.run(logits, {images: _fixed_batch()[0]})
      values = {v.op.name: sess.run(v) for v in variables}
  assert out.shape == (BATCH, 10) and np.all(np.isfinite(out))
  # The tutorial's bias initial values.
  for name, value in (('conv1', 0.0), ('conv2', 0.1), ('local3', 0.1),
                      ('local4', 0.1), ('softmax_linear', 0.0)):
    np.testing.assert_array_equal(values[name + '/biases'], np.float32(value))
  for name, stddev in INIT_STDDEV.items():
    weights = values[name + '/weights']
    assert np.abs(weights).max() <= 2 * stddev
    np.testing.assert_allclose(weights.std(), TRUNCATED_STD_FACTOR * stddev,
                               rtol=0.1)


def test_loss_is_cross_entropy_plus_weight_decay():
  images_value, labels_value = _fixed_batch(seed=1)
  with tf.Graph().as_default():
    tf.set_random_seed(5)
    images = tf.constant(images_value)
    logits = cifar10.inference(images)
    total_loss = cifar10.loss(logits, tf.constant(labels_value))
    # Two weight-decay terms (local3, local4) and the cross-entropy.
    assert len(tf.get_collection('losses')) == 3
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      got, logits_value, local3, local4 = sess.run(
          [total_loss, logits, 'local3/weights:0', 'local4/weights:0'])
  decay = sum(WEIGHT_DECAY * 0.5 * np.sum(w.astype(np.float64) ** 2)
              for w in (local3, local4))
  expected = _numpy_cross_entropy(logits_value, labels_value) + decay
  assert decay > 0.01   # the weight-decay terms matter to the comparison
  np.testing.assert_allclose(got, expected, rtol=1e-5)


def _images(batch=OPTIONS_BATCH, seed=0):
  return np.random.RandomState(seed).normal(
      size=(batch, 24, 24, 3)).astype(np.float32)


def _trainable(**options):
  with tf.Graph().as_default():
    cifar10.inference(tf.placeholder(tf.float32, [OPTIONS_BATCH, 24, 24, 3]),
                      **options)
    return [(v.op.name, v.shape.as_list()) for v in tf.trainable_variables()]


def _op_types(graph):
  return {op.type for op in graph.get_operations()}


def _dropout_ops(graph):
  return [op.name for op in graph.get_operations() if 'dropout' in op.name]


def test_default_graph_is_the_tutorials():
  with tf.Graph().as_default() as graph:
    global_step = tf.train.get_or_create_global_step()
    images = tf.placeholder(tf.float32, [OPTIONS_BATCH, 24, 24, 3])
    labels = tf.placeholder(tf.int32, [OPTIONS_BATCH])
    total_loss = cifar10.loss(cifar10.inference(images), labels)
    cifar10.train(total_loss, global_step, 50000, batch_size=128)
    assert sorted(v.op.name for v in tf.global_variables()) == (
        TUTORIAL_VARIABLES)
    assert [(v.op.name, v.shape.as_list()) for v in
            tf.trainable_variables()] == TUTORIAL_TRAINABLE
    types = _op_types(graph)
    assert 'LRN' in types and 'ApplyGradientDescent' in types
    assert not types & OPTION_OP_TYPES, types & OPTION_OP_TYPES
    assert not _dropout_ops(graph)
    assert not tf.get_collection(tf.GraphKeys.UPDATE_OPS)
    ops = sorted(op.name for op in graph.get_operations())
  # The explicit defaults build the very same graph.
  with tf.Graph().as_default() as graph:
    global_step = tf.train.get_or_create_global_step()
    images = tf.placeholder(tf.float32, [OPTIONS_BATCH, 24, 24, 3])
    labels = tf.placeholder(tf.int32, [OPTIONS_BATCH])
    logits = cifar10.inference(images, train=True, norm='lrn',
                               top_layers='fully_connected',
                               dropout_keep_prob=1.0)
    cifar10.train(cifar10.loss(logits, labels), global_step, 50000,
                  batch_size=128)
    assert sorted(op.name for op in graph.get_operations()) == ops


def test_dropout_only_in_training_and_only_on_local3_and_local4():
  assert _trainable(dropout_keep_prob=0.5) == TUTORIAL_TRAINABLE
  with tf.Graph().as_default() as graph:
    images = tf.constant(_images())
    with tf.variable_scope('model'):
      train_logits = cifar10.inference(images, dropout_keep_prob=0.5)
    dropout_scopes = {name.split('/')[1] for name in _dropout_ops(graph)}
    assert dropout_scopes == {'local3_dropout', 'local4_dropout'}
    before = len(graph.get_operations())
    with tf.variable_scope('model', reuse=True):
      eval_logits = cifar10.inference(images, train=False,
                                      dropout_keep_prob=0.5)
    new_ops = graph.get_operations()[before:]
    assert not [op.name for op in new_ops if 'dropout' in op.name]
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      train_a, train_b = sess.run(train_logits), sess.run(train_logits)
      eval_a, eval_b = sess.run(eval_logits), sess.run(eval_logits)
  assert not np.allclose(train_a, train_b)   # other units dropped each run
  np.testing.assert_array_equal(eval_a, eval_b)


def test_norm_none_drops_lrn_and_nothing_else():
  assert _trainable(norm='none') == TUTORIAL_TRAINABLE
  with tf.Graph().as_default() as graph:
    cifar10.inference(tf.constant(_images()), norm='none')
    assert 'LRN' not in _op_types(graph)


def test_batch_norm_replaces_biases_and_lrn():
  expected = []
  for layer, shape, depth in (('conv1', [5, 5, 3, 64], 64),
                              ('conv2', [5, 5, 64, 64], 64),
                              ('local3', [2304, 384], 384),
                              ('local4', [384, 192], 192)):
    expected += [(layer + '/weights', shape), (layer + '/beta', [depth]),
                 (layer + '/gamma', [depth])]
  expected += TUTORIAL_TRAINABLE[-2:]
  assert _trainable(norm='batch_norm') == expected
  with tf.Graph().as_default() as graph:
    cifar10.inference(tf.constant(_images()), norm='batch_norm')
    assert 'LRN' not in _op_types(graph)
    # A mean and a variance update per layer, for the trainers to run.
    assert len(tf.get_collection(tf.GraphKeys.UPDATE_OPS)) == 8
    moving = sorted(v.op.name for v in tf.global_variables()
                    if v not in tf.trainable_variables())
    assert moving == sorted('%s/moving_%s' % (layer, stat)
                            for layer in ('conv1', 'conv2', 'local3', 'local4')
                            for stat in ('mean', 'variance'))


def test_batch_norm_modes_and_its_statistics_survive_a_checkpoint(tmp_path):
  images_value = _images() * 3.0 + 2.0
  path = str(tmp_path / 'bn.ckpt')
  with tf.Graph().as_default() as graph:
    images = tf.placeholder(tf.float32, [OPTIONS_BATCH, 24, 24, 3])
    train_logits = cifar10.inference(images, norm='batch_norm')
    updates = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
    tf.get_variable_scope().reuse_variables()
    eval_logits = cifar10.inference(images, train=False, norm='batch_norm')
    conv = graph.get_tensor_by_name('conv1/Conv2D:0')
    relu = graph.get_tensor_by_name('conv1/conv1:0')
    with tf.variable_scope('conv1', reuse=True):
      moving_mean = tf.get_variable('moving_mean')
      moving_variance = tf.get_variable('moving_variance')
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      conv_value, relu_value, train_out, eval_out = sess.run(
          [conv, relu, train_logits, eval_logits], {images: images_value})
      # Training normalizes with the batch's own statistics.
      mean = conv_value.mean(axis=(0, 1, 2))
      variance = conv_value.var(axis=(0, 1, 2))
      expected = np.maximum(
          (conv_value - mean) / np.sqrt(variance + layers.BATCH_NORM_EPSILON),
          0)
      np.testing.assert_allclose(relu_value, expected, rtol=1e-3, atol=1e-4)
      # Evaluation uses the moving ones (still 0 and 1): another output.
      assert not np.allclose(train_out, eval_out, atol=1e-3)
      for _ in range(3):
        sess.run(updates, {images: images_value})
      decayed = 1 - layers.BATCH_NORM_DECAY ** 3
      np.testing.assert_allclose(sess.run(moving_mean), decayed * mean,
                                 rtol=1e-3, atol=1e-5)
      np.testing.assert_allclose(
          sess.run(moving_variance), 1 + decayed * (variance - 1), rtol=1e-3)
      stats = sess.run([moving_mean, moving_variance])
      eval_after = sess.run(eval_logits, {images: images_value})
      tf.train.Saver().save(sess, path)
  with tf.Graph().as_default():
    images = tf.placeholder(tf.float32, [OPTIONS_BATCH, 24, 24, 3])
    logits = cifar10.inference(images, train=False, norm='batch_norm')
    with tf.variable_scope('conv1', reuse=True):
      restored = [tf.get_variable('moving_mean'),
                  tf.get_variable('moving_variance')]
    with tf.Session() as sess:
      tf.train.Saver().restore(sess, path)
      np.testing.assert_array_equal(sess.run(restored[0]), stats[0])
      np.testing.assert_array_equal(sess.run(restored[1]), stats[1])
      np.testing.assert_allclose(sess.run(logits, {images: images_value}),
                                 eval_after, rtol=1e-5, atol=1e-6)


def _numpy_locally_connected(x, weights):
  """out[b, i, j] = sum over the 3x3 neighbourhood of x through weights[i, j]."""
  batch, height, width, channels = x.shape
  size = weights.shape[2]
  pad = size // 2
  padded = np.zeros((batch, height + 2 * pad, width + 2 * pad, channels))
  padded[:, pad:pad + height, pad:pad + width] = x
  out = np.zeros((batch, height, width, weights.shape[-1]))
  for b in range(batch):
    for i in range(height):
      for j in range(width):
        for di in range(size):
          for dj in range(size):
            out[b, i, j] += padded[b, i + di, j + dj].dot(weights[i, j, di, dj])
  return out


def test_locally_connected_layer_matches_numpy():
  rng = np.random.RandomState(1)
  x = rng.normal(size=(2, 4, 5, 3)).astype(np.float32)
  with tf.Graph().as_default():
    with tf.variable_scope('lc') as scope:
      out = layers.locally_connected(tf.constant(x), 4, 3, 0.04, None,
                                     tf.float32)
    with tf.variable_scope(scope, reuse=True):
      weights = tf.get_variable('weights')
    assert weights.shape.as_list() == [4, 5, 3, 3, 3, 4]
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      weights_value = rng.normal(size=(4, 5, 3, 3, 3, 4)).astype(np.float32)
      weights.load(weights_value, sess)
      got = sess.run(out)
  np.testing.assert_allclose(got, _numpy_locally_connected(x, weights_value),
                             rtol=1e-4, atol=1e-4)


def test_locally_connected_top_layers():
  expected = (TUTORIAL_TRAINABLE[:4] +
              [('local3/weights', [6, 6, 3, 3, 64, 32]),
               ('local3/biases', [6, 6, 32]),
               ('local4/weights', [6, 6, 3, 3, 32, 32]),
               ('local4/biases', [6, 6, 32]),
               ('softmax_linear/weights', [6 * 6 * 32, 10]),
               ('softmax_linear/biases', [10])])
  assert _trainable(top_layers='locally_connected') == expected


