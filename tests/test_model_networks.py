"""The networks of models/ (--model): shapes, parameters, graphs and recipes.

Parameter counts are checked against counts computed here from each
network's layer list as written below (the slide's widths with the CIFAR
adaptations of docs/networks.md), not from the code under test.
"""
import re

import numpy as np
import pytest

from conftest import REPO  # pylint: disable=unused-import (sys.path)

from cifar10lib import models
from cifar10lib.base.compat import tf
from cifar10lib.training import cifar10

NUM_CLASSES = 10


# --- independent parameter counts ---------------------------------------------

def conv(size, cin, cout, biases=True):
  return size * size * cin * cout + (cout if biases else 0)


def fc(n, units):
  return n * units + units


def alexnet_params():
  # 24x24 -> pool1 12 -> pool2 6 -> pool5 3: fc6 sees 3*3*256.
  return (conv(5, 3, 96) + conv(5, 96, 256) + conv(3, 256, 384) +
          conv(3, 384, 384) + conv(3, 384, 256) +
          fc(3 * 3 * 256, 4096) + fc(4096, 4096) + fc(4096, NUM_CLASSES))


def vgg16_params():
  widths = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
  total, cin = 0, 3
  for cout in widths:
    total += conv(3, cin, cout)
    cin = cout
  # Five poolings: 24 -> 12 -> 6 -> 3 -> 2 -> 1, so fc6 sees 512 values.
  return total + fc(512, 4096) + fc(4096, 4096) + fc(4096, NUM_CLASSES)


GOOGLENET_TABLE = [  # the paper's table 1
    (64, 96, 128, 16, 32, 32), (128, 128, 192, 32, 96, 64),
    (192, 96, 208, 16, 48, 64), (160, 112, 224, 24, 64, 64),
    (128, 128, 256, 24, 64, 64), (112, 144, 288, 32, 64, 64),
    (256, 160, 320, 32, 128, 128), (256, 160, 320, 32, 128, 128),
    (384, 192, 384, 48, 128, 128)]


def googlenet_params():
  total = conv(3, 3, 64) + conv(1, 64, 64) + conv(3, 64, 192)
  cin = 192
  for n1, r3, n3, r5, n5, proj in GOOGLENET_TABLE:
    total += (conv(1, cin, n1) + conv(1, cin, r3) + conv(3, r3, n3) +
              conv(1, cin, r5) + conv(5, r5, n5) + conv(1, cin, proj))
    cin = n1 + n3 + n5 + proj
  assert cin == 1024
  return total + fc(1024, NUM_CLASSES)


def resnet_params(stem, stages, projection):
  """(trainable, batch-norm moving statistics) of a basic-block ResNet."""
  def conv_bn(size, cin, cout):
    return conv(size, cin, cout, biases=False) + 2 * cout, 2 * cout
  counts = [conv_bn(3, 3, stem)]
  cin = stem
  for s, (width, blocks) in enumerate(stages):
    for b in range(blocks):
      counts += [conv_bn(3, cin, width), conv_bn(3, width, width)]
      if projection and s > 0 and b == 0:
        counts.append(conv_bn(1, cin, width))
      cin = width
  return (sum(c[0] for c in counts) + fc(cin, NUM_CLASSES),
          sum(c[1] for c in counts))


EXPECTED = {
    'alexnet': (alexnet_params(), 0),
    'vgg16': (vgg16_params(), 0),
    'googlenet': (googlenet_params(), 0),
    'resnet20': resnet_params(16, [(16, 3), (32, 3), (64, 3)], False),
    'resnet34': resnet_params(64, [(64, 3), (128, 4), (256, 6), (512, 3)],
                              True),
}
NAMES = sorted(EXPECTED)
WITH_DROPOUT = ('alexnet', 'vgg16', 'googlenet')
WITH_BATCH_NORM = ('resnet20', 'resnet34')


def test_the_registry_is_the_labs_list_and_mnists_softmax():
  # softmax is MNIST's baseline (tests/test_mnist.py checks it); the
  # whitened networks have their own tests (tests/test_whitened_cnn*.py).
  assert sorted(models.NETWORKS) == sorted(
      NAMES + ['softmax', 'whitened_cnn', 'whitened_cnn_wide'])


def test_resnet20_is_the_papers_size():
  # Section 4.2 of the ResNet paper: 0.27 M parameters.
  assert 265000 < EXPECTED['resnet20'][0] < 275000


def _build(name, train, batch=2, images=None):
  if images is None:
    images = tf.zeros([batch, 24, 24, 3])
  return cifar10.inference(images, train=train, num_classes=NUM_CLASSES,
                           model=name)


def _counts():
  """(trainable parameters, batch normalization's moving statistics)."""
  trainable = tf.trainable_variables()
  moving = [v for v in tf.global_variables() if v not in trainable and
            v.op.name.split('/')[-1] in ('moving_mean', 'moving_variance')]
  return (sum(v.shape.num_elements() for v in trainable),
          sum(v.shape.num_elements() for v in moving))


# Fifteen steps of these take minutes on two cores: run with -m slow.
SLOW_TO_TRAIN = ('googlenet', 'resnet34', 'vgg16')


@pytest.mark.parametrize('name', NAMES)
def test_output_shape_and_parameter_count(name):
  for train in (True, False):
    with tf.Graph().as_default():
      logits = _build(name, train, batch=3)
      assert logits.shape.as_list() == [3, NUM_CLASSES]
      assert _counts() == EXPECTED[name], (name, train)
      # Nothing else: the other non-trainable variables are the moving ones.
      assert len(tf.global_variables()) == len(tf.trainable_variables()) + (
          2 * len([v for v in tf.global_variables()
                   if v.op.name.endswith('/moving_mean')]))
      # Every weight matrix and kernel is decayed: one term per `weights`.
      decayed = [v for v in tf.trainable_variables()
                 if v.op.name.endswith('/weights')]
      assert len(tf.get_collection('losses')) == len(decayed) > 0
      assert models.identify({v.op.name: v.shape.as_list()
                              for v in tf.global_variables()}) == name
      # tf.nn.dropout's ops, under the name scope fc6_dropout/, dropout/...
      dropouts = [op for op in tf.get_default_graph().get_operations()
                  if re.match(r'(\w+_)?dropout/', op.name)]
      if train and name in WITH_DROPOUT:
        assert dropouts, name
      else:
        assert not dropouts, (name, train)
      updates = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
      if train and name in WITH_BATCH_NORM:
        # The moving mean and variance of every batch normalization.
        assert len(updates) == 2 * len(
            [v for v in tf.global_variables() if 'moving_mean' in v.op.name])
      else:
        assert not updates


def test_the_tutorials_graph_is_recognised_with_every_norm():
  for norm in cifar10.NORMS:
    with tf.Graph().as_default():
      cifar10.inference(tf.zeros([2, 24, 24, 3]), norm=norm)
      shapes = {v.op.name: v.shape.as_list() for v in tf.global_variables()}
      assert models.identify(shapes) == 'tutorial'


def test_other_models_ignore_the_tutorials_options():
  with tf.Graph().as_default():
    cifar10.inference(tf.zeros([2, 24, 24, 3]), model='resnet20',
                      norm='batch_norm', top_layers='locally_connected',
                      dropout_keep_prob=0.5)
    assert _counts() == EXPECTED['resnet20']


@pytest.mark.parametrize('name', WITH_BATCH_NORM)
def test_evaluation_uses_the_moving_statistics_and_restores_them(name):
  rng = np.random.RandomState(0)
  a, b, c = (rng.standard_normal([1, 24, 24, 3]).astype(np.float32)
             for _ in range(3))
  with tf.Graph().as_default():
    images = tf.placeholder(tf.float32, [2, 24, 24, 3])
    train_logits = _build(name, True, images=images)
    tf.get_variable_scope().reuse_variables()
    eval_logits = _build(name, False, images=images)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      ab, ac = (sess.run([train_logits, eval_logits],
                         {images: np.concatenate(pair)})
                for pair in ((a, b), (a, c)))
    # In training, image a's logits depend on its batch-mate; in
    # evaluation they do not.
    assert not np.allclose(ab[0][0], ac[0][0], atol=1e-4)
    np.testing.assert_allclose(ab[1][0], ac[1][0], rtol=1e-5, atol=1e-5)
  with tf.Graph().as_default():
    tf.train.get_or_create_global_step()
    _build(name, False)
    restored = cifar10.variables_to_restore()
    moving = [v for v in tf.global_variables() if 'moving_' in v.op.name]
    assert moving
    for v in moving:
      # Not averaged: restored from the checkpoint under their own names.
      assert restored[v.op.name] is v
    for v in tf.trainable_variables():
      assert restored[v.op.name + '/ExponentialMovingAverage'] is v


@pytest.mark.parametrize('name', WITH_DROPOUT)
def test_dropout_is_active_in_training_only(name):
  images = np.random.RandomState(1).standard_normal(
      [2, 24, 24, 3]).astype(np.float32)
  with tf.Graph().as_default():
    tf.set_random_seed(0)
    train_logits = _build(name, True, images=tf.constant(images))
    tf.get_variable_scope().reuse_variables()
    eval_logits = _build(name, False, images=tf.constant(images))
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      t1, t2 = sess.run(train_logits), sess.run(train_logits)
      e1, e2 = sess.run(eval_logits), sess.run(eval_logits)
  assert not np.allclose(t1, t2)
  np.testing.assert_array_equal(e1, e2)


def test_towers_share_one_set_of_variables():
  from cifar10lib.training import towers  # pylint: disable=import-outside-toplevel
  with tf.Graph().as_default():
    images = tf.zeros([4, 24, 24, 3])
    labels = tf.zeros([4], tf.int32)
    towers.build_towers(
        images, labels, 2, ['/cpu:0', '/cpu:0'],
        dict(model='resnet20', num_classes=NUM_CLASSES))
    assert _counts() == EXPECTED['resnet20']
    # Each tower's loss holds its own weight-decay terms.
    assert len(tf.get_collection('losses', 'tower_1/')) == 20 + 1


# --- recipes --------------------------------------------------------------------

def _recipe(*args):
  """config.build's recipe for command-line style args ('--name=value')."""
  from cifar10lib.cli import config  # pylint: disable=import-outside-toplevel
  values = {}
  for arg in args:
    name, value = arg[2:].split('=')
    try:
      values[name] = float(value)
    except ValueError:
      values[name] = value
  return config.build(values, given=values).recipe


@pytest.mark.parametrize('args,expected', [
    ([], cifar10.Recipe('sgd', 0.1, 0.9, 350.0, 0.1)),
    (['--model=tutorial'], cifar10.Recipe('sgd', 0.1, 0.9, 350.0, 0.1)),
    (['--model=alexnet'], cifar10.Recipe('momentum', 0.01, 0.9, 30.0, 0.1)),
    (['--model=vgg16'], cifar10.Recipe('momentum', 0.01, 0.9, 30.0, 0.1)),
    (['--model=googlenet'],
     cifar10.Recipe('momentum', 0.01, 0.9, 8.0, 0.96)),
    (['--model=resnet20'], cifar10.Recipe('momentum', 0.1, 0.9, 80.0, 0.1)),
    (['--model=resnet34'], cifar10.Recipe('momentum', 0.1, 0.9, 80.0, 0.1)),
    # Any flag given wins over the model's recipe.
    (['--model=googlenet', '--learning_rate=0.05', '--optimizer=adam'],
     cifar10.Recipe('adam', 0.05, 0.9, 8.0, 0.96)),
    (['--model=resnet20', '--momentum=0.5', '--num_epochs_per_decay=3',
      '--learning_rate_decay_factor=0.5'],
     cifar10.Recipe('momentum', 0.1, 0.5, 3.0, 0.5)),
    (['--optimizer=momentum'], cifar10.Recipe('momentum', 0.1, 0.9, 350.0,
                                              0.1)),
])
def test_recipes(args, expected):
  assert _recipe(*args) == expected


def test_the_tutorial_recipe_is_the_tutorials_constants():
  # epochs and weight_decay: --optimizer=decoupled_nesterov's only.
  assert cifar10.TUTORIAL_RECIPE == ('sgd', 0.1, 0.9, 350.0, 0.1, None, None)


@pytest.mark.parametrize('name,decay', [
    ('alexnet', 5e-4), ('vgg16', 5e-4), ('googlenet', 2e-4),
    ('resnet20', 1e-4), ('resnet34', 1e-4)])
def test_weight_decay_is_the_recipes(name, decay):
  with tf.Graph().as_default():
    _build(name, True)
    decayed = [v for v in tf.trainable_variables()
               if v.op.name.endswith('/weights')]
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      terms, l2 = sess.run([tf.add_n(tf.get_collection('losses')),
                            tf.add_n([tf.nn.l2_loss(v) for v in decayed])])
  np.testing.assert_allclose(terms, decay * l2, rtol=1e-4)


@pytest.mark.parametrize('name', [
    pytest.param(name, marks=pytest.mark.slow) if name in SLOW_TO_TRAIN
    else name for name in NAMES])
def test_the_recipe_lowers_the_loss_on_a_fixed_batch(name):
  rng = np.random.RandomState(0)
  labels = rng.randint(0, NUM_CLASSES, 8).astype(np.int32)
  images = (rng.standard_normal([8, 24, 24, 3]) * 0.3 +
            (labels[:, None, None, None] - 4.5) / 3).astype(np.float32)
  with tf.Graph().as_default():
    tf.set_random_seed(1)
    global_step = tf.train.get_or_create_global_step()
    logits = _build(name, True, images=tf.constant(images))
    cross_entropy = tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.constant(labels), logits=logits))
    total_loss = cifar10.loss(logits, tf.constant(labels))
    train_op = cifar10.train(total_loss, global_step, 50000, 8,
                             cifar10.Recipe(**models.recipe(name)))
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      losses = [sess.run([train_op, cross_entropy])[1] for _ in range(15)]
  assert np.all(np.isfinite(losses)), losses
  assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:3]), losses
