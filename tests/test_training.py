"""Training: the training op, the learning-rate schedule, the optimizers, and
cifar10_train.py run as users do (logs, checkpoints, resuming, NaN loss).

Graph-level tests compare one step's effect with numpy; the script runs on a
few hundred synthetic records (fakes.py) and is judged by its output, its
checkpoints and its event files.
"""
import glob
import os
import re
import shutil

import numpy as np
import pytest

from conftest import logged_steps, numpy_eval_images, run_script
from cifar10lib.base.compat import tf
from cifar10lib.training import cifar10  # switches TensorFlow to graph mode
import fakes

BATCH = 8
EXAMPLES_PER_EPOCH = 50000
TRAIN_BATCH = 128
DECAY_STEPS = int(EXAMPLES_PER_EPOCH / TRAIN_BATCH * 350)   # 136,718
TUTORIAL_LAYERS = ['conv1', 'conv2', 'local3', 'local4', 'softmax_linear']
TRAIN_FLAGS = ['--batch_size', '16', '--log_frequency', '10',
               '--save_summaries_steps', '10']
SEED = 7


def _fixed_batch(seed=0):
  rng = np.random.RandomState(seed)
  images = rng.normal(size=(BATCH, 24, 24, 3)).astype(np.float32)
  labels = rng.randint(0, 10, size=BATCH).astype(np.int32)
  return images, labels


# --- The training op ------------------------------------------------------


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
    for layer in TUTORIAL_LAYERS:
      for kind in ('weights', 'biases'):
        assert '%s/%s/ExponentialMovingAverage' % (layer, kind) in shadows
    weights = graph.get_tensor_by_name('conv1/weights:0')
    shadow = shadows['conv1/weights/ExponentialMovingAverage']
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      before = sess.run(weights)
      assert sess.run(global_step) == 0
      sess.run(train_op)
      after, shadow_value, step = sess.run([weights, shadow, global_step])
  assert step == 1
  assert len(trainable) == 2 * len(TUTORIAL_LAYERS)
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


def test_learning_rate_schedule_takes_its_options():
  with tf.Graph().as_default():
    step = tf.placeholder(tf.int64, [])
    recipe = cifar10.TUTORIAL_RECIPE._replace(
        learning_rate=0.5, num_epochs_per_decay=2,
        learning_rate_decay_factor=0.2)
    lr = cifar10.learning_rate(step, 1000, 10, recipe)
    with tf.Session() as sess:
      # 100 steps an epoch: the rate drops every 200 steps.
      got = [sess.run(lr, {step: s}) for s in (0, 199, 200, 400)]
  np.testing.assert_allclose(got, [0.5, 0.5, 0.1, 0.02], rtol=1e-6)


def _learnable_batch():
  """A fixed batch of learnable records, prepared as evaluation does."""
  labels = np.arange(32) % 10
  _, pixels = fakes.make_records(labels, seed=3, learnable=True)
  return (numpy_eval_images(pixels).astype(np.float32),
          labels.astype(np.int32))


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
    train_op = cifar10.optimizer(
        rate, cifar10.TUTORIAL_RECIPE._replace(optimizer=name)).minimize(
            total_loss)
    assert (name == 'sgd') == ('ApplyGradientDescent' in
                             {op.type for op in graph.get_operations()})
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      first = sess.run([total_loss, cross_entropy])
      for _ in range(8):
        sess.run(train_op)
      last = sess.run([total_loss, cross_entropy])
  assert last[0] < first[0]
  assert last[1] < first[1] - 0.1, (first, last)


# --- cifar10_train.py -----------------------------------------------------


@pytest.fixture(scope='module')
def train_data(tmp_path_factory):
  path = str(tmp_path_factory.mktemp('train_data'))
  fakes.write_dataset(path, train_per_file=60, test_records=50)
  return path


@pytest.fixture(scope='module')
def trained(tmp_path_factory, train_data):
  """A train_dir trained for 20 steps, and the run's output."""
  train_dir = str(tmp_path_factory.mktemp('trained'))
  result = run_script('cifar10_train.py', '--data_dir', train_data,
                      '--train_dir', train_dir, '--max_steps', '20',
                      '--seed', str(SEED), *TRAIN_FLAGS)
  return train_dir, result


def copy_of(train_dir, tmp_path):
  """A copy of train_dir, as `cp -r` makes: it must resume from its own."""
  copy = str(tmp_path / 'train')
  shutil.copytree(train_dir, copy)
  return copy


def test_train_writes_checkpoint_log_lines_and_scalars(trained):
  train_dir, result = trained
  assert logged_steps(result.stdout) == [10, 20]
  assert fakes.latest_step(train_dir)[1] == 20
  assert os.path.exists(os.path.join(train_dir, 'model.ckpt-20.index'))
  assert 'Traceback' not in result.stderr
  scalars = fakes.scalar_events(train_dir)
  assert scalars['learning_rate'] and all(
      value == pytest.approx(cifar10.INITIAL_LEARNING_RATE)
      for _, value in scalars['learning_rate'])
  # Each loss has a raw and a moving-average scalar, tagged as in the tutorial.
  for loss in ('total_loss', 'cross_entropy'):
    for tag in (loss, loss + ' (raw)'):
      assert tag in scalars, sorted(scalars)
      assert all(np.isfinite(value) and value > 0
                 for _, value in scalars[tag])


def test_restart_resumes_and_keeps_old_checkpoint(trained, train_data,
                                                  tmp_path):
  train_dir = copy_of(trained[0], tmp_path)
  result = run_script('cifar10_train.py', '--data_dir', train_data,
                      '--train_dir', train_dir, '--max_steps', '30',
                      *TRAIN_FLAGS)
  assert 'Resuming from %s' % os.path.join(train_dir, 'model.ckpt-20') in (
      result.stdout)
  assert logged_steps(result.stdout) == [30]
  assert fakes.latest_step(train_dir)[1] == 30
  assert os.path.exists(os.path.join(train_dir, 'model.ckpt-20.index'))


def test_seed_gives_same_initial_weights_and_max_steps_0_trains_none(
    trained, train_data, tmp_path):
  train_dir = str(tmp_path / 'seeded')
  run_script('cifar10_train.py', '--data_dir', train_data, '--train_dir',
             train_dir, '--max_steps', '0', '--seed', str(SEED), *TRAIN_FLAGS)
  assert fakes.latest_step(train_dir)[1] == 0
  assert not glob.glob(os.path.join(train_dir, 'model.ckpt-1.*'))
  again = tf.train.load_variable(train_dir, 'conv1/weights')
  first = tf.train.load_variable(
      os.path.join(trained[0], 'model.ckpt-0'), 'conv1/weights')
  assert np.std(first) > 0.01  # really random, not a constant initializer
  np.testing.assert_array_equal(again, first)


def test_nan_loss_is_one_line_and_keeps_last_checkpoint(trained, train_data,
                                                        tmp_path):
  # A diverged model: its output layer has become NaN, so the next loss is.
  train_dir = copy_of(trained[0], tmp_path)
  prefix = os.path.join(train_dir, 'model.ckpt-20')
  values = fakes.read_checkpoint(prefix)
  for name in values:
    if name.startswith('softmax_linear/biases'):
      values[name] = np.full_like(values[name], np.nan)
  for path in glob.glob(prefix + '.*'):
    os.remove(path)
  fakes.write_checkpoint(prefix, values)
  result = run_script('cifar10_train.py', '--data_dir', train_data,
                      '--train_dir', train_dir, '--max_steps', '25',
                      *TRAIN_FLAGS, check=False)
  assert result.returncode == 1
  errors = result.stderr.strip().splitlines()
  assert len(errors) == 1, result.stderr
  assert re.match(r'cifar10_train\.py: error: .*NaN at step 21\b',
                  errors[0]), errors[0]
  assert tf.train.latest_checkpoint(train_dir) == prefix


def test_train_help_lists_flags_with_help_text():
  result = run_script('cifar10_train.py', '--help', check=False)
  for flag, words in [('train_dir', 'checkpoints'), ('max_steps', 'batches'),
                      ('batch_size', 'images'), ('data_dir', 'data'),
                      ('use_fp16', 'fp16'), ('log_frequency', 'log')]:
    assert re.search(r'--(\[no\])?%s: .*%s' % (flag, words), result.stdout), (
        flag, result.stdout)


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
