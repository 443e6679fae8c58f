"""Batch normalization's moving statistics after a short run.

Their decay ramps with the global step (models/layers.py), so that a
network with batch normalization, evaluated with its moving mean and
variance after 100 steps, scores near what it scores with the batch's own
statistics; the tutorial's default network (local response normalization)
has no such statistics and its graph is unchanged.
"""
import numpy as np
import pytest

from cifar10lib import models
from cifar10lib.base.compat import tf
from cifar10lib.models import layers
from cifar10lib.training import cifar10

STEPS = 100
BATCH = 16
CLASSES = 4


def _separable(rng, n):
  """n 24x24 images: class c is a bright square in quadrant c over noise."""
  labels = rng.randint(0, CLASSES, n)
  images = rng.normal(0.0, 0.3, (n, 24, 24, 3)).astype(np.float32)
  for i, c in enumerate(labels):
    row, col = 12 * (c // 2), 12 * (c % 2)
    images[i, row:row + 12, col:col + 12, :] += 2.0
  return images, labels.astype(np.int32)


def _accuracy(sess, logits, images, labels, feed_images):
  predicted = sess.run(tf.argmax(logits, 1), {feed_images: images})
  return float(np.mean(predicted == labels))


@pytest.mark.parametrize('options', [dict(model='resnet20'),
                                     dict(norm='batch_norm')])
def test_short_run_evaluates_near_its_training_accuracy(options):
  rng = np.random.RandomState(0)
  train_images, train_labels = _separable(rng, BATCH * 8)
  test_images, test_labels = _separable(rng, 64)
  with tf.Graph().as_default():
    tf.set_random_seed(1)
    global_step = tf.train.get_or_create_global_step()
    images = tf.placeholder(tf.float32, [None, 24, 24, 3])
    labels = tf.placeholder(tf.int32, [None])
    with tf.variable_scope('net'):
      logits = cifar10.inference(images, num_classes=CLASSES,
                                 dropout_keep_prob=1.0, **options)
    with tf.variable_scope('net', reuse=True):
      eval_logits = cifar10.inference(images, train=False,
                                      num_classes=CLASSES, **options)
    loss = cifar10.loss(logits, labels)
    recipe = cifar10.TUTORIAL_RECIPE._replace(
        **(models.recipe(options['model']) or {}) if 'model' in options
        else {})
    train_op = cifar10.train(loss, global_step, len(train_labels), BATCH,
                             recipe._replace(learning_rate=0.05))
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      for step in range(STEPS):
        start = (step * BATCH) % len(train_labels)
        sess.run(train_op, {images: train_images[start:start + BATCH],
                            labels: train_labels[start:start + BATCH]})
      trained = _accuracy(sess, logits, test_images, test_labels, images)
      evaluated = _accuracy(sess, eval_logits, test_images, test_labels,
                            images)
      decay = sess.run(layers._moving_decay(tf.float32))
  assert trained >= 0.8, 'did not learn the separable classes'
  assert abs(evaluated - trained) <= 0.05, (trained, evaluated)
  # Step 100: (1 + 100) / (10 + 100); the long-run 0.99 from step 890 on.
  assert decay == pytest.approx(101.0 / 110.0)


def test_tutorial_network_has_no_moving_statistics():
  with tf.Graph().as_default():
    tf.train.get_or_create_global_step()
    cifar10.inference(tf.zeros([2, 24, 24, 3]))
    assert tf.get_collection(tf.GraphKeys.UPDATE_OPS) == []
    assert not [v for v in tf.global_variables() if 'moving' in v.op.name]
