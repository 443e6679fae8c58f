"""Tests of the options beyond the tutorial (issue 8) and of cifar10_classify.py.

Each model option is built in-process with explicit arguments (the flags'
defaults stay the tutorial's); the scripts run as subprocesses with the flags
a user would give. Expected values come from numpy or from checkpoints whose
outputs the test designs, never from the code under test.
"""
import os

import numpy as np
import pytest

from conftest import make_records, run_script, write_dataset
import cifar10
from cifar10 import tf

# The tutorial's variables, and those its training adds: the moving averages
# of the weights and of the losses, and the global step. Nothing else.
TUTORIAL_VARIABLES = sorted(
    ['global_step', 'cross_entropy/avg', 'total_loss/avg',
     'local3/weight_loss/avg', 'local4/weight_loss/avg'] +
    ['%s/%s%s' % (layer, kind, shadow)
     for layer in ('conv1', 'conv2', 'local3', 'local4', 'softmax_linear')
     for kind in ('weights', 'biases')
     for shadow in ('', '/ExponentialMovingAverage')])
TUTORIAL_TRAINABLE = [
    ('conv1/weights', [5, 5, 3, 64]), ('conv1/biases', [64]),
    ('conv2/weights', [5, 5, 64, 64]), ('conv2/biases', [64]),
    ('local3/weights', [2304, 384]), ('local3/biases', [384]),
    ('local4/weights', [384, 192]), ('local4/biases', [192]),
    ('softmax_linear/weights', [192, 10]), ('softmax_linear/biases', [10]),
]
# Op types that only the options bring.
OPTION_OP_TYPES = {'ApplyMomentum', 'ApplyAdam', 'ApplyAdagrad',
                   'ApplyRMSProp', 'ExtractImagePatches', 'BatchMatMul',
                   'BatchMatMulV2', 'BatchMatMulV3'}
BATCH = 16
CLASS_NAMES = ['kind%d' % i for i in range(10)]


def _images(batch=BATCH, seed=0):
  return np.random.RandomState(seed).normal(
      size=(batch, 24, 24, 3)).astype(np.float32)


def _trainable(**options):
  with tf.Graph().as_default():
    cifar10.inference(tf.placeholder(tf.float32, [BATCH, 24, 24, 3]),
                      **options)
    return [(v.op.name, v.shape.as_list()) for v in tf.trainable_variables()]


def _op_types(graph):
  return {op.type for op in graph.get_operations()}


def _dropout_ops(graph):
  return [op.name for op in graph.get_operations() if 'dropout' in op.name]


def test_default_graph_is_the_tutorials():
  with tf.Graph().as_default() as graph:
    global_step = tf.train.get_or_create_global_step()
    images = tf.placeholder(tf.float32, [BATCH, 24, 24, 3])
    labels = tf.placeholder(tf.int32, [BATCH])
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
    images = tf.placeholder(tf.float32, [BATCH, 24, 24, 3])
    labels = tf.placeholder(tf.int32, [BATCH])
    logits = cifar10.inference(images, train=True, norm='lrn',
                               top_layers='fully_connected',
                               dropout_keep_prob=1.0)
    cifar10.train(cifar10.loss(logits, labels), global_step, 50000,
                  batch_size=128)
    assert sorted(op.name for op in graph.get_operations()) == ops


def test_learning_rate_schedule_takes_its_options():
  with tf.Graph().as_default():
    step = tf.placeholder(tf.int64, [])
    lr = cifar10.learning_rate(step, 1000, 10, initial=0.5,
                               num_epochs_per_decay=2, decay_factor=0.2)
    with tf.Session() as sess:
      # 100 steps an epoch: the rate drops every 200 steps.
      got = [sess.run(lr, {step: s}) for s in (0, 199, 200, 400)]
  np.testing.assert_allclose(got, [0.5, 0.5, 0.1, 0.02], rtol=1e-6)


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
    images = tf.placeholder(tf.float32, [BATCH, 24, 24, 3])
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
          (conv_value - mean) / np.sqrt(variance + cifar10.BATCH_NORM_EPSILON),
          0)
      np.testing.assert_allclose(relu_value, expected, rtol=1e-3, atol=1e-4)
      # Evaluation uses the moving ones (still 0 and 1): another output.
      assert not np.allclose(train_out, eval_out, atol=1e-3)
      for _ in range(3):
        sess.run(updates, {images: images_value})
      decayed = 1 - cifar10.BATCH_NORM_DECAY ** 3
      np.testing.assert_allclose(sess.run(moving_mean), decayed * mean,
                                 rtol=1e-3, atol=1e-5)
      np.testing.assert_allclose(
          sess.run(moving_variance), 1 + decayed * (variance - 1), rtol=1e-3)
      stats = sess.run([moving_mean, moving_variance])
      eval_after = sess.run(eval_logits, {images: images_value})
      tf.train.Saver().save(sess, path)
  with tf.Graph().as_default():
    images = tf.placeholder(tf.float32, [BATCH, 24, 24, 3])
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
      out = cifar10.locally_connected(tf.constant(x), 4, 3, tf.float32)
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


def _learnable_batch():
  """A fixed batch of learnable records, prepared as evaluation does."""
  labels = np.arange(32) % 10
  _, pixels = make_records(labels, seed=3, learnable=True)
  images = pixels[:, 4:28, 4:28, :].astype(np.float64)
  flat = images.reshape(len(images), -1)
  std = np.maximum(flat.std(axis=1), 1.0 / np.sqrt(flat.shape[1]))
  images = (images - flat.mean(axis=1)[:, None, None, None]) / (
      std[:, None, None, None])
  return images.astype(np.float32), labels.astype(np.int32)


@pytest.mark.parametrize('name,rate', [
    ('sgd', 0.1), ('momentum', 0.02), ('nesterov', 0.02), ('adagrad', 0.01),
    ('rmsprop', 0.05), ('adam', 0.001)])
def test_each_optimizer_reduces_the_loss(name, rate):
  images, labels = _learnable_batch()
  with tf.Graph().as_default() as graph:
    tf.set_random_seed(0)
    total_loss = cifar10.loss(cifar10.inference(tf.constant(images)),
                              tf.constant(labels))
    cross_entropy = graph.get_tensor_by_name('cross_entropy:0')
    train_op = cifar10.optimizer(rate, name=name).minimize(total_loss)
    assert (name == 'sgd') == ('ApplyGradientDescent' in _op_types(graph))
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      first = sess.run([total_loss, cross_entropy])
      for _ in range(8):
        sess.run(train_op)
      last = sess.run([total_loss, cross_entropy])
  assert last[0] < first[0]
  assert last[1] < first[1] - 0.1, (first, last)


def _checkpoint_tensors(train_dir):
  reader = tf.train.NewCheckpointReader(tf.train.latest_checkpoint(train_dir))
  return {name: reader.get_tensor(name)
          for name in reader.get_variable_to_shape_map()}


MODEL_FLAGS = ['--norm=batch_norm', '--top_layers=locally_connected']


def test_training_with_the_options_then_an_ensemble_of_it_twice(tmp_path):
  data = str(tmp_path / 'data')
  write_dataset(data, learnable=True)
  train_dir = str(tmp_path / 'train')
  run_script('cifar10_train.py', '--data_dir', data, '--train_dir', train_dir,
             '--batch_size', '16', '--max_steps', '2', '--optimizer=momentum',
             '--dropout_keep_prob=0.5', *MODEL_FLAGS)
  tensors = _checkpoint_tensors(train_dir)
  assert tensors['global_step'] == 2
  assert tensors['local3/weights'].shape == (6, 6, 3, 3, 64, 32)
  assert 'conv1/weights/Momentum' in tensors
  assert 'conv1/biases' not in tensors
  # The moving statistics followed the two batches.
  for layer in ('conv1', 'conv2', 'local3', 'local4'):
    assert np.abs(tensors[layer + '/moving_mean']).max() > 0, layer
  result = run_script('cifar10_eval.py', '--data_dir', data,
                      '--eval_dir', str(tmp_path / 'eval'),
                      '--batch_size', '32', '--checkpoint_paths',
                      '%s,%s/model.ckpt-2' % (train_dir, train_dir),
                      *MODEL_FLAGS)
  lines = result.stdout.splitlines()
  assert len(lines) == 3, result.stdout
  members = [line.split('precision @ 1 = ')[1].split(',')[0]
             for line in lines[:2]]
  assert members[0] == members[1]
  assert 'ensemble of 2 checkpoints: precision @ 1 = %s)' % (
      members[0]) in lines[2]


def test_multi_tower_training_updates_batch_norm_statistics(tmp_path):
  data = str(tmp_path / 'data')
  write_dataset(data)
  train_dir = str(tmp_path / 'train')
  run_script('cifar10_multi_gpu_train.py', '--data_dir', data,
             '--train_dir', train_dir, '--batch_size', '8', '--max_steps',
             '1', '--num_gpus', '2', '--tower_device', 'cpu',
             '--norm=batch_norm')
  tensors = _checkpoint_tensors(train_dir)
  for layer in ('conv1', 'conv2', 'local3', 'local4'):
    assert np.abs(tensors[layer + '/moving_mean']).max() > 0, layer
    assert not np.allclose(tensors[layer + '/moving_variance'], 1.0), layer


def _save_designed_model(train_dir, raw, shadow, step=1):
  """Saves a default-model checkpoint with given raw and shadow values.

  raw and shadow map variable names to values; the other variables are 0.
  """
  with tf.Graph().as_default():
    global_step = tf.train.get_or_create_global_step()
    cifar10.inference(tf.placeholder(tf.float32, [1, 24, 24, 3]), train=False)
    variables = tf.trainable_variables()
    averages = tf.train.ExponentialMovingAverage(cifar10.MOVING_AVERAGE_DECAY)
    averages.apply(variables)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      global_step.load(step, sess)
      for var in variables:
        zeros = np.zeros(var.shape.as_list(), np.float32)
        var.load(raw.get(var.op.name, zeros), sess)
        averages.average(var).load(shadow.get(var.op.name, zeros), sess)
      tf.train.Saver().save(sess, os.path.join(train_dir, 'model.ckpt'),
                            global_step=step)


def _constant_logits(probabilities):
  """softmax_linear biases giving these class probabilities to any input."""
  p = np.full(10, (1.0 - sum(probabilities.values())) / (
      10 - len(probabilities)))
  for label, value in probabilities.items():
    p[label] = value
  return {'softmax_linear/biases': np.log(p).astype(np.float32)}


def test_ensemble_averages_softmax_of_raw_weights(tmp_path):
  data = str(tmp_path / 'data')
  write_dataset(data, test_labels=[1] * 50 + [2] * 30 + [3] * 20)
  # Member a says 1, member b says 2, both give 3 its second place: their
  # average says 3. The moving averages would say 3 for both members.
  always_3 = _constant_logits({3: 0.9})
  a, b = str(tmp_path / 'a'), str(tmp_path / 'b')
  _save_designed_model(a, _constant_logits({1: 0.40, 3: 0.35}), always_3)
  _save_designed_model(b, _constant_logits({2: 0.40, 3: 0.35}), always_3)
  result = run_script('cifar10_eval.py', '--data_dir', data,
                      '--eval_dir', str(tmp_path / 'eval'),
                      '--batch_size', '32', '--moving_average=false',
                      '--checkpoint_paths', '%s,%s' % (a, b))
  lines = result.stdout.splitlines()
  assert '= 0.500 (50/100 correct, global step 1, %s' % a in lines[0]
  assert '= 0.300 (30/100 correct, global step 1, %s' % b in lines[1]
  assert 'ensemble of 2 checkpoints: precision @ 1 = 0.200 (20/100' in lines[2]


# Ten colours around grey, one per class: their standardized values point in
# ten directions of the plane of zero-mean RGB vectors, 36 degrees apart.
_PLANE = np.array([[1, -1, 0], [1, 1, -2]]) / np.array(
    [[np.sqrt(2)], [np.sqrt(6)]])
_DIRECTIONS = np.array([[np.cos(a), np.sin(a)] for a in
                        np.arange(10) * 2 * np.pi / 10]).dot(_PLANE)
CLASS_COLOURS = np.round(128 + 100 * _DIRECTIONS).astype(np.uint8)


def _colour_classifier():
  """Weights under which a plain-coloured image's class is its colour's.

  conv1 passes the centre pixel's standardized colour v on as relu(v) and
  relu(-v); LRN scales these six channels by almost the same factor, conv2 and the pools pass them
  on; local3's unit k computes 10 + direction_k . v (positive, so the ReLU
  keeps it), local4 and softmax_linear pass units 0-9 on, scaled.
  """
  values = {}
  conv1 = np.zeros([5, 5, 3, 64], np.float32)
  for c in range(3):
    conv1[2, 2, c, 2 * c], conv1[2, 2, c, 2 * c + 1] = 1, -1
  values['conv1/weights'] = conv1
  conv2 = np.zeros([5, 5, 64, 64], np.float32)
  conv2[2, 2, range(6), range(6)] = 1
  values['conv2/weights'] = conv2
  local3 = np.zeros([2304, 384], np.float32)
  for c in range(3):
    local3[2 * c, :10] = _DIRECTIONS[:, c]
    local3[2 * c + 1, :10] = -_DIRECTIONS[:, c]
  values['local3/weights'] = local3
  values['local3/biases'] = np.full(384, 10, np.float32)
  local4 = np.zeros([384, 192], np.float32)
  local4[range(10), range(10)] = 1
  values['local4/weights'] = local4
  softmax = np.zeros([192, 10], np.float32)
  softmax[range(10), range(10)] = 10
  values['softmax_linear/weights'] = softmax
  return values


def test_classifier_names_the_class_of_each_image(tmp_path):
  data = tmp_path / 'data' / 'cifar-10-batches-bin'
  data.mkdir(parents=True)
  (data / 'batches.meta.txt').write_text('\n'.join(CLASS_NAMES) + '\n\n')
  train_dir = str(tmp_path / 'train')
  # The raw weights say class 0 for anything: the shadows must be used.
  _save_designed_model(train_dir, _constant_logits({0: 0.99}),
                       _colour_classifier())
  cases = [(3, [50, 40], 'png'), (7, [64, 64], 'jpeg'), (0, [32, 32], 'png'),
           (5, [24, 90], 'jpeg')]
  paths = []
  with tf.Graph().as_default(), tf.Session() as sess:
    for label, size, kind in cases:
      image = np.tile(CLASS_COLOURS[label], size + [1])
      encode = tf.image.encode_png if kind == 'png' else tf.image.encode_jpeg
      path = str(tmp_path / ('class%d.%s' % (label, kind)))
      with open(path, 'wb') as f:
        f.write(sess.run(encode(tf.constant(image))))
      paths.append(path)
  not_an_image = str(tmp_path / 'notes.png')
  with open(not_an_image, 'w') as f:
    f.write('not a picture\n')
  result = run_script('cifar10_classify.py', '--data_dir',
                      str(tmp_path / 'data'), '--checkpoint_dir', train_dir,
                      paths[0], paths[1], not_an_image, paths[2], paths[3],
                      check=False)
  assert result.returncode == 1, result.stderr
  lines = result.stdout.splitlines()
  assert len(lines) == len(cases), result.stdout
  for (label, _, _), path, line in zip(cases, paths, lines):
    assert line.startswith('%s: %s (' % (path, CLASS_NAMES[label])), line
    shown = line.split(': ', 1)[1].split(', ')
    assert len(shown) == 3
    probabilities = [float(item.split('(')[1].rstrip(')')) for item in shown]
    assert probabilities == sorted(probabilities, reverse=True)
    assert probabilities[0] > 0.5
  errors = result.stderr.strip().splitlines()
  assert errors[0] == ('cifar10_classify.py: error: %s: not an image (PNG or '
                       'JPEG) that TensorFlow can decode' % not_an_image)
  assert errors[-1] == ('cifar10_classify.py: error: 1 of 5 images could not '
                        'be classified')
  assert 'Traceback' not in result.stderr


def test_resuming_with_other_model_flags_is_refused_in_one_line(tmp_path,
                                                               data_dir):
  train_dir = str(tmp_path / 'train')
  common = ['--data_dir', data_dir, '--train_dir', train_dir,
            '--batch_size=16', '--min_fraction_of_examples_in_queue=0.1']
  run_script('cifar10_train.py', '--max_steps=1', *common)
  before = sorted(os.listdir(train_dir))
  result = run_script('cifar10_train.py', '--max_steps=2', '--norm=batch_norm',
                      *common, check=False)
  assert result.returncode == 1
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and 'Traceback' not in result.stderr
  assert lines[0].startswith('cifar10_train.py: error: --train_dir=%s: cannot '
                             'resume: checkpoint ' % train_dir)
  assert 'has no variable conv1/beta' in lines[0]
  assert sorted(os.listdir(train_dir)) == before


def _colour_records(labels, rng, size=32):
  """Plain images of each label's CLASS_COLOURS, with pixel noise."""
  noise = rng.randint(-25, 26, size=(len(labels), size, size, 3))
  return np.clip(CLASS_COLOURS[labels][:, None, None, :] + noise, 0,
                 255).astype(np.uint8)


def test_classifier_with_a_trained_checkpoint(tmp_path):
  """Train on coloured images of ten classes, then classify new ones."""
  rng = np.random.RandomState(11)
  batches = tmp_path / 'data' / 'cifar-10-batches-bin'
  batches.mkdir(parents=True)
  for name in ['data_batch_%d.bin' % i for i in range(1, 6)] + [
      'test_batch.bin']:
    labels = np.arange(60) % 10
    pixels = _colour_records(labels, rng)
    records = np.concatenate(
        [labels[:, None], pixels.transpose(0, 3, 1, 2).reshape(60, -1)], 1)
    (batches / name).write_bytes(records.astype(np.uint8).tobytes())
  (batches / 'batches.meta.txt').write_text('\n'.join(CLASS_NAMES) + '\n')
  train_dir = str(tmp_path / 'train')
  run_script('cifar10_train.py', '--data_dir', str(tmp_path / 'data'),
             '--train_dir', train_dir, '--max_steps=100', '--batch_size=32',
             '--seed=1', '--optimizer=adam', '--learning_rate=0.001',
             '--min_fraction_of_examples_in_queue=0.2')
  paths = []
  with tf.Graph().as_default(), tf.Session() as sess:
    for label in range(10):
      size = [32 + 9 * label, 60 - 3 * label]
      image = _colour_records(np.array([label]), rng)[0]
      image = sess.run(tf.image.resize_images(image, size, method=(
          tf.image.ResizeMethod.NEAREST_NEIGHBOR)))
      kind = ('png', 'jpeg')[label % 2]
      encode = tf.image.encode_png if kind == 'png' else tf.image.encode_jpeg
      path = str(tmp_path / ('new%d.%s' % (label, kind)))
      with open(path, 'wb') as f:
        f.write(sess.run(encode(tf.constant(image))))
      paths.append(path)
  result = run_script('cifar10_classify.py', '--data_dir',
                      str(tmp_path / 'data'), '--checkpoint_dir', train_dir,
                      '--top_k=2', *paths)
  lines = result.stdout.splitlines()
  assert len(lines) == 10, result.stdout
  for label, (path, line) in enumerate(zip(paths, lines)):
    assert line.startswith('%s: %s (' % (path, CLASS_NAMES[label])), line
