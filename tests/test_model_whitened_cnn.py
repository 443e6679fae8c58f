"""The whitened networks' parts against numpy oracles.

The whitening layer whitens; translate_flip moves and mirrors pixels
exactly; test-time augmentation is the weighted mean of its views; the
decoupled Nesterov recipe (triangular rate, batch-norm biases at 64x,
whitening biases for the first epochs, lookahead) updates weights exactly
as a numpy transcription of the recipe does. And the recipe through the
scripts on tiny data: train, resume, evaluate with and without test-time
augmentation, classify, two towers.
"""
import os
import re

import numpy as np
import pytest

import fakes
from conftest import run_pipeline, run_script
from cifar10lib.base.compat import tf
from cifar10lib.data import cifar10_input
from cifar10lib.data import datasets
from cifar10lib.data import preprocessing
from cifar10lib.evaluation import evaluation
from cifar10lib.models import whitened_cnn
from cifar10lib.training import cifar10
from cifar10lib.training import fast_training


# The recipe's schedules written independently in numpy: the oracles the
# graph's rate and lookahead are checked against.
def triangle(step, steps):
  """The rate's multiplier at step of steps."""
  fractions, values = zip(*fast_training.TRIANGLE)
  return float(np.interp(step, [f * steps for f in fractions], values))


def lookahead_decay(step, steps, steps_per_epoch):
  """The lookahead average's decay at step (0 before epoch 3; 1 at the
  last step, where the weights become the average)."""
  if step >= steps:
    return 1.0
  if step < fast_training.LOOKAHEAD_EPOCH * steps_per_epoch:
    return 0.0
  return fast_training.LOOKAHEAD_DECAY * (step / steps) ** 3


def _correlated_images(n=40, seed=0):
  """Images whose neighbouring pixels and channels are strongly correlated."""
  rng = np.random.RandomState(seed)
  base = rng.normal(size=[n, 32, 32, 1]) * 3.0
  smooth = base + np.roll(base, 1, axis=1) + np.roll(base, 1, axis=2)
  return smooth * [1.0, 0.8, 0.6] + rng.normal(size=[n, 32, 32, 3]) * 0.5


def test_whitening_weights_whiten_the_patches():
  images = _correlated_images()
  values, vectors = whitened_cnn.whitening(images)
  patches = whitened_cnn.patches(images)
  raw = patches.T.dot(patches) / len(patches)
  assert np.abs(raw - np.diag(np.diag(raw))).max() > 1.0  # correlated before
  with tf.Graph().as_default(), tf.Session() as sess:
    kernel = whitened_cnn.whitening_kernel(tf.constant(values),
                                           tf.constant(vectors))
    out = sess.run(tf.nn.conv2d(tf.constant(images, tf.float32), kernel,
                                [1, 1, 1, 1], 'VALID'))
  assert out.shape == (40, 31, 31, 24)
  flat = out.reshape(-1, 24).astype(np.float64)
  moment = flat[:, :12].T.dot(flat[:, :12]) / len(flat)
  # The identity, but for the eps added to each eigenvalue.
  np.testing.assert_allclose(
      moment, np.diag(values / (values + whitened_cnn.WHITEN_EPS)), atol=1e-4)
  np.testing.assert_allclose(moment, np.eye(12), atol=3e-3)
  np.testing.assert_allclose(flat[:, 12:], -flat[:, :12], rtol=1e-6)


def _translate_flip(pixels, keys, epoch, max_shift):
  with tf.Graph().as_default(), tf.Session() as sess:
    return sess.run(cifar10_input.translate_flip(
        tf.constant(pixels, tf.float32), tf.constant(keys),
        tf.constant(epoch, tf.int64), max_shift))


def test_flips_alternate_by_epoch_for_each_record():
  pixels = np.random.RandomState(1).randint(0, 256, [64, 32, 32, 3])
  keys = ['file:%d' % i for i in range(64)]
  epochs = [_translate_flip(pixels, keys, e, 0) for e in range(4)]
  mirrored = pixels[:, :, ::-1, :]
  first = [np.array_equal(out, mirrored[i]) for i, out in enumerate(epochs[0])]
  # Random on the first epoch: some records mirrored, some not.
  assert 10 < sum(first) < 54
  for e, out in enumerate(epochs):
    for i in range(64):
      expected = mirrored[i] if first[i] != (e % 2 == 1) else pixels[i]
      np.testing.assert_array_equal(out[i], expected)


def test_translation_is_a_window_of_the_reflect_padded_image():
  pixels = np.random.RandomState(2).randint(0, 256, [200, 32, 32, 3])
  keys = ['f:%d' % i for i in range(200)]
  out = _translate_flip(pixels, keys, 0, 2)
  padded = np.pad(pixels, [[0, 0], [2, 2], [2, 2], [0, 0]], mode='reflect')
  seen = set()
  for i in range(200):
    matches = [(dy, dx, flip) for dy in range(5) for dx in range(5)
               for flip in (False, True)
               if np.array_equal(out[i], (
                   padded[i, dy:dy + 32, dx:dx + 32][:, ::-1] if flip
                   else padded[i, dy:dy + 32, dx:dx + 32]))]
    assert matches, 'image %d is no window of its padded image' % i
    seen.update((dy, dx) for dy, dx, _ in matches)
  assert len(seen) == 25  # every offset drawn


def test_translate_flip_pipeline_gives_full_normalized_images(tmp_path):
  fakes.write_dataset(str(tmp_path), train_per_file=20, test_records=10)
  split = datasets.split(str(tmp_path), 'train')
  with tf.Graph().as_default():
    tf.train.get_or_create_global_step()
    mean = preprocessing.mean_variable('channel_standardize', split)
    images, labels = cifar10.distorted_inputs(
        str(tmp_path), 8, split=split, mean=mean,
        min_fraction_of_examples_in_queue=0.1, augmentation='translate_flip')
    assert images.shape.as_list() == [8, 32, 32, 3]
    (batch, _), = run_pipeline([images, labels], batches=1)
  stats = preprocessing.compute_mean('channel_standardize', split)
  raw = np.concatenate(list(datasets.read_images(split, 100)))
  np.testing.assert_allclose(stats[0], raw.mean(axis=(0, 1, 2)), rtol=1e-5)
  np.testing.assert_allclose(stats[1], raw.std(axis=(0, 1, 2)), rtol=1e-4)
  normalized = (raw - stats[0]) / stats[1]
  assert batch.min() >= normalized.min() - 1e-4
  assert batch.max() <= normalized.max() + 1e-4


@pytest.mark.parametrize('level', [0, 1, 2])
def test_tta_is_the_weighted_mean_of_the_views(level):
  rng = np.random.RandomState(3)
  images = rng.normal(size=[5, 8, 8, 3]).astype(np.float32)
  weights = rng.normal(size=[8 * 8 * 3, 4]).astype(np.float32)

  def logits_np(x):
    return x.reshape(len(x), -1).dot(weights)

  with tf.Graph().as_default(), tf.Session() as sess:
    got = sess.run(evaluation.tta_logits(
        tf.constant(images),
        lambda x: tf.matmul(tf.reshape(x, [tf.shape(x)[0], -1]), weights),
        level))
  mirror = lambda x: x[:, :, ::-1, :]
  pair = (logits_np(images) + logits_np(mirror(images))) / 2
  padded = np.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]], mode='reflect')
  shifts = [padded[:, :8, :8], padded[:, 2:, 2:]]
  shifted = [(logits_np(s) + logits_np(mirror(s))) / 2 for s in shifts]
  expected = {0: logits_np(images), 1: pair,
              2: pair / 2 + shifted[0] / 4 + shifted[1] / 4}[level]
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


RECIPE = cifar10.Recipe(fast_training.NAME, 11.5, 0.85, 1.0, 1.0,
                        epochs=4.0, weight_decay=0.0153)


def _numpy_recipe(initial, grads, groups, steps, batch, epoch_examples):
  """The recipe, transcribed: the oracle of test_decoupled_nesterov_steps."""
  total = fast_training.total_steps(RECIPE.epochs, epoch_examples, batch)
  per_epoch = epoch_examples / batch
  base = RECIPE.learning_rate / (1024 * (1 + 1 / (1 - RECIPE.momentum)))
  decay = RECIPE.weight_decay / RECIPE.learning_rate
  params = {k: v.astype(np.float64) for k, v in initial.items()}
  accums = {k: np.zeros_like(v) for k, v in initial.items()}
  averages = {k: v.astype(np.float64) for k, v in initial.items()}
  rates = []
  for step in range(steps):
    lr = base * batch * triangle(step, total)
    rates.append(lr)
    for k in params:
      scale = {'bn': 64.0, 'whiten': 1.0 if step / per_epoch < 3 else 0.0,
               'other': 1.0}[groups[k]]
      coefficient = decay / (64.0 if groups[k] == 'bn' else 1.0)
      g = grads[k] + coefficient * params[k]
      accums[k] = RECIPE.momentum * accums[k] + g
      params[k] = params[k] - lr * scale * (g + RECIPE.momentum * accums[k])
    done = step + 1
    if done % 5 == 0 or done == total:
      d = lookahead_decay(done, total, per_epoch)
      for k in params:
        averages[k] = d * averages[k] + (1 - d) * params[k]
        params[k] = averages[k].copy()
  return params, rates, total


def test_decoupled_nesterov_steps_match_the_numpy_recipe():
  rng = np.random.RandomState(4)
  groups = {'w': 'other', 'beta': 'bn', 'whiten': 'whiten'}
  initial = {k: rng.normal(size=[3]).astype(np.float32) for k in groups}
  grads = {k: rng.normal(size=[3]).astype(np.float32) for k in groups}
  batch, epoch_examples = 8, 40     # 5 steps an epoch, 20 in all
  with tf.Graph().as_default(), tf.Session() as sess:
    step = tf.train.get_or_create_global_step()
    variables = {k: tf.get_variable(k, initializer=tf.constant(v))
                 for k, v in initial.items()}
    tf.add_to_collection(whitened_cnn.BATCH_NORM_BIASES, variables['beta'])
    tf.add_to_collection(whitened_cnn.WHITENING_BIASES, variables['whiten'])
    lr = cifar10.learning_rate(step, epoch_examples, batch, RECIPE)
    train_op = cifar10.apply_gradients(
        [(tf.constant(grads[k]), variables[k]) for k in sorted(groups)],
        step, lr, RECIPE)
    sess.run(tf.global_variables_initializer())
    rates = []
    for _ in range(20):
      rates.append(sess.run(lr))
      sess.run(train_op)
    got = sess.run(variables)
    assert sess.run(step) == 20
  expected, expected_rates, total = _numpy_recipe(initial, grads, groups, 20,
                                                  batch, epoch_examples)
  assert total == 20
  np.testing.assert_allclose(rates, expected_rates, rtol=1e-5)
  for k in groups:
    np.testing.assert_allclose(got[k], expected[k], rtol=1e-4, atol=1e-6)


def test_triangle_and_lookahead_schedules():
  assert triangle(0, 100) == pytest.approx(0.2)
  assert triangle(23, 100) == pytest.approx(1.0)
  assert triangle(100, 100) == pytest.approx(0.07)
  assert lookahead_decay(10, 100, 5.0) == 0.0   # before epoch 3
  assert lookahead_decay(50, 100, 5.0) == pytest.approx(
      0.95 ** 5 * 0.5 ** 3)
  assert lookahead_decay(100, 100, 5.0) == 1.0
  # 11.5 per 1,024 examples with momentum 0.85, as a per-example rate.
  assert fast_training.per_example_rate(11.5, 0.85) == pytest.approx(
      11.5 / 7850.67, rel=1e-5)


# --- Through the scripts, on tiny data: train part of the recipe, resume to
# its end (the triangular rate continues where it stopped), evaluate with and
# without test-time augmentation, classify an image, train with two towers.

TIMEOUT = 400   # a bound against hangs on a loaded machine, not a timing
PRECISION_LINE = re.compile(r'precision @ 1 = (\d\.\d{3}) \((\d+)/(\d+) correct')


def _train(data_dir, train_dir, *extra, script='cifar10_train.py'):
  return run_script(script, '--data_dir', data_dir, '--train_dir', train_dir,
                    '--model=whitened_cnn', '--batch_size=8', '--epochs=2',
                    '--log_frequency=1', '--save_summaries_steps=1', *extra,
                    timeout=TIMEOUT)


def test_train_resume_evaluate_with_tta_and_classify(tmp_path):
  data_dir, train_dir = str(tmp_path / 'data'), str(tmp_path / 'train')
  # 40 training records: 5 steps of 8 an epoch, 10 for --epochs=2.
  fakes.write_dataset(data_dir, train_per_file=8, test_records=30,
                      learnable=True)
  first = _train(data_dir, train_dir, '--max_steps=4')
  assert 'Done at step 4' in first.stdout
  second = _train(data_dir, train_dir)
  assert 'Resuming from' in second.stdout
  assert 'Done at step 10' in second.stdout
  # The summaries of both runs: the rate is the triangle over all 10 steps
  # (a summary is tagged with the step its run started or ended at).
  rates = fakes.scalar_events(train_dir)['learning_rate']
  assert max(step for step, _ in rates) >= 8
  base = fast_training.per_example_rate(11.5, 0.85) * 8
  for step, rate in rates:
    assert any(np.isclose(rate, base * triangle(s, 10),
                          rtol=1e-5) for s in (step - 1, step)), (step, rate)
  counts = {}
  for tta in ('0', '1', '2'):
    result = run_script('cifar10_eval.py', '--data_dir', data_dir,
                        '--checkpoint_dir', train_dir,
                        '--eval_dir', str(tmp_path / 'eval'),
                        '--model=whitened_cnn', '--run_once', '--tta', tta,
                        timeout=TIMEOUT)
    match = PRECISION_LINE.search(result.stdout)
    assert match and match.group(3) == '30', result.stdout
    counts[tta] = int(match.group(2))
  assert 'moving averages' not in result.stdout  # the recipe's raw weights
  image = fakes.write_png(tmp_path / 'image.png', np.random.RandomState(
      5).randint(0, 256, [32, 32, 3]))
  result = run_script('cifar10_classify.py', '--data_dir', data_dir,
                      '--checkpoint_dir', train_dir, '--model=whitened_cnn',
                      image, timeout=TIMEOUT)
  assert re.match(r'%s: \w+ \(\d\.\d{3}\)' % re.escape(image),
                  result.stdout), result.stdout


def test_two_towers_and_a_mismatched_input_mode(tmp_path):
  data_dir = str(tmp_path / 'data')
  fakes.write_dataset(data_dir, train_per_file=8, test_records=10)
  train_dir = str(tmp_path / 'towers')
  result = _train(data_dir, train_dir, '--max_steps=2', '--num_gpus=2',
                  '--tower_device=cpu', '--batch_size=4',
                  script='cifar10_multi_gpu_train.py')
  assert 'Done at step 2' in result.stdout
  assert os.path.exists(os.path.join(train_dir, 'checkpoint'))
  refused = run_script('cifar10_train.py', '--data_dir', data_dir,
                       '--train_dir', str(tmp_path / 'no'),
                       '--model=whitened_cnn', '--batch_size=8',
                       '--augmentation=tutorial', check=False,
                       timeout=TIMEOUT)
  assert refused.returncode == 1
  assert refused.stderr.count('\n') == 1
  assert '--augmentation=translate_flip' in refused.stderr
