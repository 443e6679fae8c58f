"""End-to-end tests of cifar10_train.py and cifar10_eval.py, run as users do.

Training runs on a few hundred synthetic records. Evaluation runs on
checkpoints written here, whose predictions the tests decide (a zero
softmax layer and a large bias on one class), so precision @ 1 has an exact
expected value.
"""
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest

from conftest import REPO, run_script, write_dataset
import cifar10  # switches TensorFlow to graph mode
from cifar10 import tf

# The tutorial's progress line, exactly.
LOG_LINE = re.compile(
    r'^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: step (\d+), loss = \d+\.\d\d '
    r'\(\d+\.\d examples/sec; \d+\.\d{3} sec/batch\)$')
PRECISION_LINE = re.compile(
    r'^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: precision @ 1 = (\d\.\d{3}) '
    r'\((\d+)/(\d+) correct, global step (\d+), ([\w.-]+)\)$')
TRAIN_FLAGS = ['--batch_size', '16', '--log_frequency', '10',
               '--save_summaries_steps', '10']
SEED = 7
# The eval checkpoints: the bias on the predicted class dwarfs every other
# logit, whatever the (zero) weights below it do.
PREDICTION_BIAS = 100.0
EVAL_STEP = 1234
SHADOW_CLASS = 0      # the class the moving averages predict
RAW_CLASS = 1         # the class the raw weights predict


def logged_steps(stdout):
  """The steps of the tutorial log lines; fails on a malformed one."""
  steps = []
  for line in stdout.splitlines():
    if ': step ' in line:
      match = LOG_LINE.match(line)
      assert match, 'not in the tutorial format: %r' % line
      steps.append(int(match.group(1)))
  return steps


def checkpoint_step(train_dir):
  """The global step in the name of train_dir's latest checkpoint."""
  latest = tf.train.latest_checkpoint(train_dir)
  assert latest, 'no checkpoint in %s' % train_dir
  return int(latest.rsplit('-', 1)[1])


def scalar_events(log_dir):
  """{tag: [(step, value)]} of every scalar in log_dir's event files."""
  scalars = {}
  for path in glob.glob(os.path.join(log_dir, 'events.out.tfevents.*')):
    for event in tf.train.summary_iterator(path):
      for value in event.summary.value:
        if value.WhichOneof('value') == 'simple_value':
          scalars.setdefault(value.tag, []).append(
              (event.step, value.simple_value))
  return scalars


def write_checkpoint(prefix, tensors):
  """Saves {name: numpy value} as a checkpoint at prefix, made latest."""
  if not os.path.isdir(os.path.dirname(prefix)):
    os.makedirs(os.path.dirname(prefix))
  with tf.Graph().as_default():
    variables = {name: tf.Variable(value, name='v%d' % i)
                 for i, (name, value) in enumerate(sorted(tensors.items()))}
    saver = tf.train.Saver(variables)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      saver.save(sess, prefix)


def read_all(checkpoint):
  reader = tf.train.NewCheckpointReader(checkpoint)
  return {name: reader.get_tensor(name)
          for name in reader.get_variable_to_shape_map()}


def model_shapes():
  """{variable name: shape} of the model, from the model itself."""
  with tf.Graph().as_default():
    cifar10.inference(tf.placeholder(tf.float32, [None, 24, 24, 3]))
    return {v.op.name: v.shape.as_list() for v in tf.global_variables()}


def predicting(shapes, cls):
  """Model values whose every prediction is class cls."""
  values = {name: np.zeros(shape, np.float32) for name, shape in shapes.items()}
  values['softmax_linear/biases'][cls] = PREDICTION_BIAS
  return values


@pytest.fixture(scope='module')
def train_data(tmp_path_factory):
  path = str(tmp_path_factory.mktemp('train_data'))
  write_dataset(path, train_per_file=60, test_records=50)
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
  assert checkpoint_step(train_dir) == 20
  assert os.path.exists(os.path.join(train_dir, 'model.ckpt-20.index'))
  assert 'Traceback' not in result.stderr
  scalars = scalar_events(train_dir)
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
  assert checkpoint_step(train_dir) == 30
  assert os.path.exists(os.path.join(train_dir, 'model.ckpt-20.index'))


def test_seed_gives_same_initial_weights_and_max_steps_0_trains_none(
    trained, train_data, tmp_path):
  train_dir = str(tmp_path / 'seeded')
  run_script('cifar10_train.py', '--data_dir', train_data, '--train_dir',
             train_dir, '--max_steps', '0', '--seed', str(SEED), *TRAIN_FLAGS)
  assert checkpoint_step(train_dir) == 0
  assert not glob.glob(os.path.join(train_dir, 'model.ckpt-1.*'))
  again = tf.train.load_variable(train_dir, 'conv1/weights')
  first = tf.train.load_variable(
      os.path.join(trained[0], 'model.ckpt-0'), 'conv1/weights')
  assert np.std(first) > 0.01  # really random, not a constant initializer
  np.testing.assert_array_equal(again, first)


def test_sigterm_saves_the_step_reached_and_resumes(train_data, tmp_path):
  train_dir = str(tmp_path / 'train')
  args = [sys.executable, os.path.join(REPO, 'cifar10_train.py'),
          '--data_dir', train_data, '--train_dir', train_dir,
          '--batch_size', '16', '--log_frequency', '2',
          '--save_summaries_steps', '1000', '--max_steps', '1000000']
  with open(str(tmp_path / 'stderr'), 'w+') as stderr:
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=stderr,
                            universal_newlines=True, cwd=REPO)
    watchdog = threading.Timer(180, proc.kill)
    watchdog.start()
    try:
      lines = []
      for line in proc.stdout:
        lines.append(line)
        if LOG_LINE.match(line.rstrip('\n')):
          break
      proc.send_signal(signal.SIGTERM)
      rest, _ = proc.communicate()
    finally:
      watchdog.cancel()
    stderr.seek(0)
    errors = stderr.read()
  output = ''.join(lines) + rest
  assert proc.returncode == 0, output + errors
  assert 'Traceback' not in errors
  last_logged = logged_steps(output)[-1]
  stopped = re.search(r'Stopped by SIGTERM at step (\d+)', output)
  assert stopped, output
  reached = int(stopped.group(1))
  assert reached >= last_logged
  assert checkpoint_step(train_dir) == reached

  result = run_script('cifar10_train.py', '--data_dir', train_data,
                      '--train_dir', train_dir, '--batch_size', '16',
                      '--save_summaries_steps', '1000',
                      '--max_steps', str(reached + 2))
  assert 'Resuming from %s-%d' % (os.path.join(train_dir, 'model.ckpt'),
                                  reached) in result.stdout
  assert checkpoint_step(train_dir) == reached + 2


def test_nan_loss_is_one_line_and_keeps_last_checkpoint(trained, train_data,
                                                        tmp_path):
  # A diverged model: its output layer has become NaN, so the next loss is.
  train_dir = copy_of(trained[0], tmp_path)
  prefix = os.path.join(train_dir, 'model.ckpt-20')
  values = read_all(prefix)
  for name in values:
    if name.startswith('softmax_linear/biases'):
      values[name] = np.full_like(values[name], np.nan)
  for path in glob.glob(prefix + '.*'):
    os.remove(path)
  write_checkpoint(prefix, values)
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
  write_dataset(path, train_per_file=10, test_labels=eval_labels)
  return path


@pytest.fixture(scope='module')
def averaged_checkpoint_dir(tmp_path_factory):
  """A checkpoint whose shadow values predict SHADOW_CLASS, raw ones RAW_CLASS.

  It is named without its step, so the step can only come from inside it.
  """
  path = str(tmp_path_factory.mktemp('averaged'))
  shapes = model_shapes()
  values = predicting(shapes, RAW_CLASS)
  for name, value in predicting(shapes, SHADOW_CLASS).items():
    values[name + '/ExponentialMovingAverage'] = value
  values['global_step'] = np.int64(EVAL_STEP)
  write_checkpoint(os.path.join(path, 'model.ckpt'), values)
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
  summaries = scalar_events(eval_dir)['Precision @ 1']
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
  values = predicting(model_shapes(), RAW_CLASS)
  values['global_step'] = np.int64(EVAL_STEP)
  write_checkpoint(os.path.join(checkpoint_dir, 'model.ckpt-%d' % EVAL_STEP),
                   values)
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
