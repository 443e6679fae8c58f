"""Tests of cifar10's graph builders: the network, its loss and its training op.

Expected values are computed here in numpy from values read back out of the
graph (weights, logits), never taken from the code under test.
"""
import numpy as np

import cifar10
from cifar10 import tf

BATCH = 8
EXAMPLES_PER_EPOCH = 50000
TRAIN_BATCH = 128
DECAY_STEPS = int(EXAMPLES_PER_EPOCH / TRAIN_BATCH * 350)   # 136,718
EXPECTED_VARIABLES = [
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
        EXPECTED_VARIABLES)
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


def _training_graph():
  images_value, labels_value = _fixed_batch(seed=2)
  global_step = tf.train.get_or_create_global_step()
  logits = cifar10.inference(tf.constant(images_value))
  total_loss = cifar10.loss(logits, tf.constant(labels_value))
  train_op = cifar10.train(total_loss, global_step, EXAMPLES_PER_EPOCH,
                           batch_size=TRAIN_BATCH)
  return global_step, train_op


def test_one_training_step_updates_weights_and_averages():
  with tf.Graph().as_default() as graph:
    global_step, train_op = _training_graph()
    trainable = tf.trainable_variables()
    shadows = {v.op.name: v for v in tf.global_variables()
               if v.op.name.endswith('/ExponentialMovingAverage')}
    for name, _ in EXPECTED_VARIABLES:
      assert name + '/ExponentialMovingAverage' in shadows
    weights = graph.get_tensor_by_name('conv1/weights:0')
    shadow = shadows['conv1/weights/ExponentialMovingAverage']
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      before = sess.run(weights)
      assert sess.run(global_step) == 0
      sess.run(train_op)
      after, shadow_value, step = sess.run([weights, shadow, global_step])
  assert step == 1
  assert len(trainable) == len(EXPECTED_VARIABLES)
  assert np.abs(after - before).max() > 0
  # With num_updates=global_step (1 after the step) the decay is
  # min(0.9999, (1 + 1) / (10 + 1)); the shadow starts at the initial value.
  decay = 2.0 / 11.0
  np.testing.assert_allclose(shadow_value, decay * before + (1 - decay) * after,
                             rtol=1e-5, atol=1e-7)


def test_learning_rate_decays_tenfold_after_350_epochs():
  with tf.Graph().as_default() as graph:
    global_step, _ = _training_graph()
    summaries = [op for op in graph.get_operations()
                 if op.type == 'ScalarSummary' and op.name == 'learning_rate']
    assert len(summaries) == 1
    lr = summaries[0].inputs[1]
    new_step = tf.placeholder(tf.int64, [])
    assign = tf.assign(global_step, new_step)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      rates = []
      for step in (0, DECAY_STEPS - 1, DECAY_STEPS, 2 * DECAY_STEPS):
        sess.run(assign, {new_step: step})
        rates.append(sess.run(lr))
  np.testing.assert_allclose(rates, [0.1, 0.1, 0.01, 0.001], rtol=1e-6)
