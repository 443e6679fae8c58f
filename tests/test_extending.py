"""docs/code_map.md's "to add a network / dataset / optimizer / schedule",
followed step by step with a toy of each, in this process.

Each test registers its toy exactly where docs/code_map.md says (monkeypatch
undoes it afterwards), then uses it through the same calls the scripts make:
the configuration built from option values (config.build), and the graph
builders of cifar10.py and cifar10_input.py.
"""
import numpy as np
import pytest

from cifar10lib import models
from cifar10lib.base.compat import tf
from cifar10lib.cli import config
from cifar10lib.data import cifar10_input
from cifar10lib.data import datasets
from cifar10lib.models import layers
from cifar10lib.training import cifar10
from cifar10lib.training import schedules
from fakes import idx_images_bytes, idx_labels_bytes


def _tiny_network(images, num_classes, train=True):
  """A toy network: one fully connected layer over the flattened pixels."""
  del train
  flat = tf.reshape(images, [tf.shape(images)[0], -1])
  with tf.variable_scope('tiny'):
    weights = layers.variable_with_weight_decay(
        'weights', [flat.shape[1], num_classes], stddev=0.01, wd=None,
        dtype=tf.float32)
    return tf.matmul(flat, weights)


def _train_steps(cfg, images, labels, steps=3):
  """Trains cfg's network and recipe on one fixed batch; returns the losses."""
  with tf.Graph().as_default():
    global_step = tf.train.get_or_create_global_step()
    logits = cifar10.inference(tf.constant(images), **cfg.model_options())
    total_loss = cifar10.loss(logits, tf.constant(labels))
    train_op = cifar10.train(total_loss, global_step, 100, len(labels),
                             cfg.recipe, schedule=cfg.schedule)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      return [sess.run([train_op, total_loss])[1] for _ in range(steps)]


def test_adding_a_network(monkeypatch):
  # README: write models/<name>.py with inference(images, num_classes,
  # train), and add it to models.NETWORKS.
  monkeypatch.setitem(models.NETWORKS, 'tiny',
                      models.Network(_tiny_network, None, None, None, None))
  cfg = config.build({'model': 'tiny'})
  rng = np.random.RandomState(0)
  images = rng.standard_normal([8, 24, 24, 3]).astype(np.float32)
  labels = rng.randint(0, 10, 8).astype(np.int32)
  losses = _train_steps(cfg, images, labels)
  assert all(np.isfinite(losses))
  assert losses[-1] < losses[0]   # it learns its one batch
  # No recipe of its own: the tutorial's.
  assert cfg.recipe == cifar10.TUTORIAL_RECIPE


def test_adding_a_dataset(monkeypatch, tmp_path):
  # README: describe it with a datasets.Dataset and add it to
  # datasets.DATASETS. Here: a Fashion-MNIST-like IDX dataset of 12x12
  # images in 5 classes, under its own directory and file names.
  toy = datasets.MNIST._replace(
      name='toy', title='Toy', batches_dir='toy',
      train_files=['toy-train-images-idx3-ubyte'],
      eval_files=['toy-test-images-idx3-ubyte'],
      label_classes=(5,), image_size=12, crop_size=12, md5={}, url=None)
  monkeypatch.setitem(datasets.DATASETS, 'toy', toy)
  rng = np.random.RandomState(0)
  (tmp_path / 'toy').mkdir()
  written = {}
  for name, count in (('toy-train', 40), ('toy-test', 10)):
    pixels = rng.randint(0, 256, [count, 12, 12]).astype(np.uint8)
    labels = rng.randint(0, 5, count).astype(np.uint8)
    (tmp_path / 'toy' / (name + '-images-idx3-ubyte')).write_bytes(
        idx_images_bytes(pixels))
    (tmp_path / 'toy' / (name + '-labels-idx1-ubyte')).write_bytes(
        idx_labels_bytes(labels))
    written[name] = (pixels, labels)

  cfg = config.build({'dataset': 'toy', 'data_dir': str(tmp_path),
                      'validation_examples': 10})
  assert cfg.dataset is toy and cfg.model_options()['num_classes'] == 5
  # The raw reads that validation and the mean image use.
  validation = datasets.split(cfg.data_dir, 'validation', toy, 10)
  images = np.concatenate(list(datasets.read_images(validation, 4)))
  np.testing.assert_array_equal(images[..., 0], written['toy-train'][0][30:])
  np.testing.assert_array_equal(datasets.read_labels(validation),
                                written['toy-train'][1][30:])
  # The queue pipelines, training and evaluation.
  test = datasets.split(cfg.data_dir, 'test', toy)
  with tf.Graph().as_default():
    train_images, train_labels = cifar10_input.distorted_inputs(
        cfg.data_dir, 8, ds=toy, min_fraction_of_examples_in_queue=0.1)
    eval_images, eval_labels = cifar10_input.inputs(
        True, cfg.data_dir, 10, ds=toy, num_epochs=1)
    with tf.Session() as sess:
      sess.run(tf.local_variables_initializer())
      coord = tf.train.Coordinator()
      threads = tf.train.start_queue_runners(sess, coord)
      batch, labels, test_images, test_labels = sess.run(
          [train_images, train_labels, eval_images, eval_labels])
      coord.request_stop()
      coord.join(threads)
  assert batch.shape == (8, 12, 12, 1) and set(labels) <= set(range(5))
  assert test_images.shape == (10, 12, 12, 1)
  np.testing.assert_array_equal(test_labels, written['toy-test'][1])
  assert test.num_examples == 10


def test_adding_an_optimizer(monkeypatch):
  # README: add a name -> constructor(learning rate, recipe) entry to
  # cifar10.OPTIMIZERS.
  made = []

  def halved_sgd(lr, recipe):
    made.append(recipe)
    return tf.train.GradientDescentOptimizer(lr * 0.5)

  monkeypatch.setitem(cifar10.OPTIMIZERS, 'halved_sgd', halved_sgd)
  cfg = config.build({'optimizer': 'halved_sgd', 'model': 'softmax'})
  assert cfg.recipe.optimizer == 'halved_sgd'
  images = np.zeros([4, 24, 24, 3], np.float32)
  images[:, 0, 0, 0] = 1.0
  losses = _train_steps(cfg, images, np.array([1, 1, 1, 1], np.int32))
  assert made and made[0] == cfg.recipe
  assert losses[-1] < losses[0]


def test_adding_a_schedule(monkeypatch):
  # README: add a name -> rate(global step, batches per epoch, recipe,
  # schedule) entry to schedules.RATES.
  monkeypatch.setitem(
      schedules.RATES, 'halving',
      lambda step, batches, recipe, schedule: recipe.learning_rate * tf.pow(
          0.5, tf.cast(step, tf.float32)))
  schedule = schedules.TUTORIAL_SCHEDULE._replace(name='halving')
  with tf.Graph().as_default():
    step = tf.train.get_or_create_global_step()
    lr = cifar10.learning_rate(step, 1000, 10, schedule=schedule)
    bump = tf.assign_add(step, 1)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      rates = []
      for _ in range(3):
        rates.append(sess.run(lr))
        sess.run(bump)
  np.testing.assert_allclose(rates, [0.1, 0.05, 0.025], rtol=1e-6)
  with pytest.raises(KeyError):
    schedules.learning_rate(None, 1, cifar10.TUTORIAL_RECIPE,
                            schedule._replace(name='nonexistent'))
