"""Evaluation: cifar10_eval.py's exact precision @ 1, its ensembles, and
cifar10_classify.py.

Evaluation runs on checkpoints written here, whose predictions the tests
decide (a zero softmax layer and a large bias on one class, or weights that
read an image's colour), so precision @ 1 has an exact expected value; an
ensemble of trained checkpoints is checked against numpy's average of its
members' softmax outputs.
"""
import os
import re

import numpy as np
import pytest

from conftest import numpy_eval_images, run_script
from cifar10lib.base.compat import tf
from cifar10lib.training import cifar10  # switches TensorFlow to graph mode
import fakes

PRECISION_LINE = re.compile(
    r'^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: precision @ 1 = (\d\.\d{3}) '
    r'\((\d+)/(\d+) correct, global step (\d+), ([\w.-]+)\)$')
# The eval checkpoints: the bias on the predicted class dwarfs every other
# logit, whatever the (zero) weights below it do.
PREDICTION_BIAS = 100.0
EVAL_STEP = 1234
SHADOW_CLASS = 0      # the class the moving averages predict
RAW_CLASS = 1         # the class the raw weights predict
CLASS_NAMES = ['kind%d' % i for i in range(10)]


def predicting(cls):
  """Model values (the others zero) whose every prediction is class cls."""
  biases = np.zeros(10, np.float32)
  biases[cls] = PREDICTION_BIAS
  return {'softmax_linear/biases': biases}


# --- Exact evaluation -----------------------------------------------------


@pytest.fixture(scope='module')
def eval_labels():
  """300 test labels: 100 of the shadow's class, 50 of the raw one's."""
  others = [c for c in range(10) if c not in (SHADOW_CLASS, RAW_CLASS)]
  labels = np.array([SHADOW_CLASS] * 100 + [RAW_CLASS] * 50 + others * 18 +
                    others[:6])
  np.random.RandomState(3).shuffle(labels)
  return labels


@pytest.fixture(scope='module')
def eval_data(tmp_path_factory, eval_labels):
  path = str(tmp_path_factory.mktemp('eval_data'))
  fakes.write_dataset(path, train_per_file=10, test_labels=eval_labels)
  return path


@pytest.fixture(scope='module')
def averaged_checkpoint_dir(tmp_path_factory):
  """A checkpoint whose shadow values predict SHADOW_CLASS, raw ones RAW_CLASS.

  It is named without its step, so the step can only come from inside it.
  """
  path = str(tmp_path_factory.mktemp('averaged'))
  fakes.write_model_checkpoint(os.path.join(path, 'model.ckpt'),
                               raw=predicting(RAW_CLASS),
                               shadow=predicting(SHADOW_CLASS), step=EVAL_STEP)
  return path


def run_eval(data_dir, checkpoint_dir, eval_dir, *args, check=True):
  return run_script('cifar10_eval.py', '--data_dir', data_dir,
                    '--checkpoint_dir', checkpoint_dir, '--eval_dir',
                    eval_dir, '--run_once', '--batch_size', '32', *args,
                    check=check)


def precision_result(stdout):
  """(precision text, correct, total, step, checkpoint) of the one result."""
  results = [PRECISION_LINE.match(line) for line in stdout.splitlines()
             if 'precision @ 1' in line]
  assert len(results) == 1 and results[0], stdout
  p, correct, total, step, name = results[0].groups()
  return p, int(correct), int(total), int(step), name


@pytest.fixture(scope='module')
def full_eval(tmp_path_factory, eval_data, averaged_checkpoint_dir):
  eval_dir = str(tmp_path_factory.mktemp('eval'))
  result = run_eval(eval_data, averaged_checkpoint_dir, eval_dir)
  return eval_dir, result


def test_eval_counts_every_example_exactly_once(full_eval):
  eval_dir, result = full_eval
  # 32 does not divide 300: the final batch holds 12 records.
  assert precision_result(result.stdout) == ('0.333', 100, 300, EVAL_STEP,
                                             'model.ckpt')
  summaries = fakes.scalar_events(eval_dir)['Precision @ 1']
  assert [step for step, _ in summaries] == [EVAL_STEP]
  assert summaries[0][1] == pytest.approx(100 / 300)


def test_eval_uses_the_moving_averages(full_eval):
  # The raw weights would give 50/300: only the shadow values give 100/300.
  result = full_eval[1]
  assert precision_result(result.stdout)[1:3] == (100, 300)
  assert 'raw weights' not in result.stdout + result.stderr


def test_eval_num_examples_counts_the_first_ones(
    eval_data, eval_labels, averaged_checkpoint_dir, tmp_path):
  result = run_eval(eval_data, averaged_checkpoint_dir, str(tmp_path),
                    '--num_examples', '250')
  correct = int(np.sum(eval_labels[:250] == SHADOW_CLASS))
  assert precision_result(result.stdout)[:3] == (
      '%.3f' % (correct / 250), correct, 250)


def test_eval_without_moving_averages_warns_once_and_uses_raw_weights(
    eval_data, tmp_path):
  checkpoint_dir = str(tmp_path / 'raw')
  fakes.write_model_checkpoint(
      os.path.join(checkpoint_dir, 'model.ckpt-%d' % EVAL_STEP),
      raw=predicting(RAW_CLASS), step=EVAL_STEP)
  result = run_eval(eval_data, checkpoint_dir, str(tmp_path / 'eval'))
  output = (result.stdout + result.stderr).splitlines()
  warnings = [line for line in output if 'moving average' in line]
  assert len(warnings) == 1 and 'raw weights' in warnings[0], output
  assert precision_result(result.stdout)[:3] == ('0.167', 50, 300)


def test_eval_run_once_without_checkpoint_fails_in_one_line(eval_data,
                                                            tmp_path):
  empty = str(tmp_path / 'empty')
  os.makedirs(empty)
  result = run_eval(eval_data, empty, str(tmp_path / 'eval'), check=False)
  assert result.returncode != 0
  errors = result.stderr.strip().splitlines()
  assert errors == ['cifar10_eval.py: error: No checkpoint file found in '
                    '--checkpoint_dir=%s' % empty], result.stderr
  assert 'precision' not in result.stdout


# --- Ensembles -------------------------------------------------------------


def _constant_logits(probabilities):
  """softmax_linear biases giving these class probabilities to any input."""
  p = np.full(10, (1.0 - sum(probabilities.values())) / (
      10 - len(probabilities)))
  for label, value in probabilities.items():
    p[label] = value
  return {'softmax_linear/biases': np.log(p).astype(np.float32)}


def test_ensemble_averages_softmax_of_raw_weights(tmp_path):
  data = str(tmp_path / 'data')
  fakes.write_dataset(data, test_labels=[1] * 50 + [2] * 30 + [3] * 20)
  # Member a says 1, member b says 2, both give 3 its second place: their
  # average says 3. The moving averages would say 3 for both members.
  always_3 = _constant_logits({3: 0.9})
  a, b = str(tmp_path / 'a'), str(tmp_path / 'b')
  for path, raw in ((a, _constant_logits({1: 0.40, 3: 0.35})),
                    (b, _constant_logits({2: 0.40, 3: 0.35}))):
    fakes.write_model_checkpoint(os.path.join(path, 'model.ckpt-1'), raw=raw,
                                 shadow=always_3, step=1)
  result = run_script('cifar10_eval.py', '--data_dir', data,
                      '--eval_dir', str(tmp_path / 'eval'),
                      '--batch_size', '32', '--moving_average=false',
                      '--checkpoint_paths', '%s,%s' % (a, b))
  lines = [l for l in result.stdout.splitlines() if 'precision @ 1' in l]
  assert '= 0.500 (50/100 correct, global step 1, %s' % a in lines[0]
  assert '= 0.300 (30/100 correct, global step 1, %s' % b in lines[1]
  assert 'ensemble of 2 checkpoints: precision @ 1 = 0.200 (20/100' in lines[2]


MODEL_FLAGS = ['--norm=batch_norm', '--top_layers=locally_connected']
MODEL_OPTIONS = dict(norm='batch_norm', top_layers='locally_connected')


def _softmax(checkpoint, images):
  """Class probabilities of the MODEL_OPTIONS model under checkpoint, as
  evaluation restores it: the moving averages of the trainable variables,
  the others (batch normalization's statistics) as they are."""
  with tf.Graph().as_default():
    logits = cifar10.inference(tf.constant(images.astype(np.float32)),
                               train=False, **MODEL_OPTIONS)
    trainable = set(tf.trainable_variables())
    restore = {v.op.name + (fakes.SHADOW if v in trainable else ''): v
               for v in tf.global_variables()}
    with tf.Session() as sess:
      tf.train.Saver(restore).restore(sess, checkpoint)
      logits = sess.run(logits).astype(np.float64)
  exp = np.exp(logits - logits.max(axis=1, keepdims=True))
  return exp / exp.sum(axis=1, keepdims=True)


def _correct(probabilities, labels):
  """(examples whose label scores highest, those too close to call)."""
  ordered = np.sort(probabilities, axis=1)
  close = int(np.sum(ordered[:, -1] - ordered[:, -2] < 1e-5))
  label_scores = probabilities[np.arange(len(labels)), labels]
  return int(np.sum(label_scores >= ordered[:, -1])), close


def test_training_with_the_options_then_an_ensemble_of_two_checkpoints(
    tmp_path):
  data = str(tmp_path / 'data')
  test = fakes.write_dataset(data, learnable=True)['test']
  train_dir = str(tmp_path / 'train')
  run_script('cifar10_train.py', '--data_dir', data, '--train_dir', train_dir,
             '--batch_size', '16', '--max_steps', '2', '--optimizer=momentum',
             '--dropout_keep_prob=0.5', '--save_checkpoint_steps=1',
             *MODEL_FLAGS)
  tensors = fakes.read_checkpoint(train_dir)
  assert tensors['global_step'] == 2
  assert tensors['local3/weights'].shape == (6, 6, 3, 3, 64, 32)
  assert 'conv1/weights/Momentum' in tensors
  assert 'conv1/biases' not in tensors
  # The moving statistics followed the two batches.
  for layer in ('conv1', 'conv2', 'local3', 'local4'):
    assert np.abs(tensors[layer + '/moving_mean']).max() > 0, layer
  # Two members, after one step and after two: the directory's latest.
  first = os.path.join(train_dir, 'model.ckpt-1')
  result = run_script('cifar10_eval.py', '--data_dir', data,
                      '--eval_dir', str(tmp_path / 'eval'),
                      '--batch_size', '32', '--checkpoint_paths',
                      '%s,%s' % (first, train_dir), *MODEL_FLAGS)
  lines = [l for l in result.stdout.splitlines() if 'precision @ 1' in l]
  assert len(lines) == 3, result.stdout
  images = numpy_eval_images(test.pixels)
  members = [_softmax(path, images) for path in
             (first, os.path.join(train_dir, 'model.ckpt-2'))]
  assert not np.allclose(members[0], members[1], atol=1e-4)
  for step, line, probabilities in zip((1, 2), lines, members):
    correct, close = _correct(probabilities, test.labels)
    printed = re.search(r'\((\d+)/100 correct, global step %d, %s\)$' % (
        step, re.escape(os.path.join(train_dir, 'model.ckpt-%d' % step))),
                        line)
    assert printed, line
    assert abs(int(printed.group(1)) - correct) <= close, (line, correct)
  correct, close = _correct((members[0] + members[1]) / 2, test.labels)
  printed = re.search(r'ensemble of 2 checkpoints: precision @ 1 = '
                      r'(\d\.\d{3}) \((\d+)/100 correct\)$', lines[2])
  assert printed, lines[2]
  assert abs(int(printed.group(2)) - correct) <= close, (lines[2], correct)
  assert printed.group(1) == '%.3f' % (int(printed.group(2)) / 100)


# --- cifar10_classify.py ---------------------------------------------------


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
  relu(-v); LRN scales these six channels by almost the same factor, conv2
  and the pools pass them on; local3's unit k computes 10 + direction_k . v
  (positive, so the ReLU keeps it), local4 and softmax_linear pass units 0-9
  on, scaled.
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
  # A names file may end in blank lines.
  fakes.write_label_names(tmp_path / 'data', CLASS_NAMES + [''])
  train_dir = str(tmp_path / 'train')
  # The raw weights say class 0 for anything: the shadows must be used.
  fakes.write_model_checkpoint(os.path.join(train_dir, 'model.ckpt-1'),
                               raw=_constant_logits({0: 0.99}),
                               shadow=_colour_classifier(), step=1)
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


def _colour_records(labels, rng, size=32):
  """Plain images of each label's CLASS_COLOURS, with pixel noise."""
  noise = rng.randint(-25, 26, size=(len(labels), size, size, 3))
  return np.clip(CLASS_COLOURS[labels][:, None, None, :] + noise, 0,
                 255).astype(np.uint8)


def test_classifier_with_a_trained_checkpoint(tmp_path):
  """Train on coloured images of ten classes, then classify new ones."""
  rng = np.random.RandomState(11)
  batches = tmp_path / 'data' / fakes.CIFAR10.batches_dir
  for name in fakes.CIFAR10.train_files + fakes.CIFAR10.test_files:
    labels = np.arange(60) % 10
    fakes.write_records(batches / name, labels,
                        pixels=_colour_records(labels, rng))
  fakes.write_label_names(tmp_path / 'data', CLASS_NAMES)
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


# --- One evaluation preprocessing -----------------------------------------


def test_classify_prepares_an_image_as_evaluation_does(tmp_path):
  """A test record, given to the classifier as a PNG, becomes the same input.

  classifying.prepare_image decodes and scales an encoded image, then
  applies evaluation's own preprocessing; on a 32x32 picture the scaling
  keeps every pixel, so the model must see exactly what the evaluation
  pipeline makes of the record.
  """
  from cifar10lib.data import cifar10_input
  from cifar10lib.evaluation import classifying
  from conftest import run_pipeline
  data_dir = str(tmp_path / 'data')
  written = fakes.write_dataset(data_dir, train_per_file=2, test_records=3)
  with tf.Graph().as_default():
    images, _ = cifar10_input.inputs(True, data_dir, 3, num_epochs=1)
    evaluated = run_pipeline(images)[0]
  with tf.Graph().as_default(), tf.Session() as sess:
    for i, pixels in enumerate(written['test'].pixels):
      png = sess.run(tf.image.encode_png(tf.constant(pixels)))
      prepared = sess.run(classifying.prepare_image(tf.constant(png)))
      assert prepared.shape == (1, 24, 24, 3)
      np.testing.assert_allclose(prepared[0], evaluated[i], atol=1e-5)
  # And both are the tutorial's central crop, standardized.
  np.testing.assert_allclose(evaluated,
                             numpy_eval_images(written['test'].pixels),
                             atol=1e-4)
