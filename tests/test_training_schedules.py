"""The learning-rate schedules of issue 13: plateau and cosine restarts.

The rates are checked against formulas written out here in numpy; the
scripts run as a user runs them, on a few hundred records.
"""
import glob
import math
import os
import re

import numpy as np

from conftest import run_script

from cifar10lib.base.compat import tf
from cifar10lib.training import cifar10
from cifar10lib.training import schedules


def _rates(schedule, steps, recipe=cifar10.TUTORIAL_RECIPE,
           examples_per_epoch=1000, batch_size=100):
  with tf.Graph().as_default():
    step = tf.placeholder(tf.int64, [])
    lr = cifar10.learning_rate(step, examples_per_epoch, batch_size, recipe,
                               schedule)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      return [float(sess.run(lr, {step: s})) for s in steps]


def _cosine(initial, cycle, step):
  """SGDR's rate: a cosine from initial to 0 over cycle steps, restarted."""
  return 0.5 * initial * (1 + math.cos(math.pi * (step % cycle) / cycle))


def test_cosine_restarts_rate_at_chosen_steps():
  recipe = cifar10.TUTORIAL_RECIPE._replace(learning_rate=0.05)
  schedule = schedules.TUTORIAL_SCHEDULE._replace(
      name=schedules.COSINE_RESTARTS, restart_epochs=2.5)
  steps = [0, 1, 12, 24, 25, 26, 37, 49, 50, 77]
  # 1000 examples of 100 a step: 10 steps an epoch, 25 a cycle.
  expected = [_cosine(0.05, 25, s) for s in steps]
  np.testing.assert_allclose(_rates(schedule, steps, recipe), expected,
                             rtol=1e-5, atol=1e-8)
  assert expected[3] < 0.001 and expected[4] == 0.05  # a restart at step 25


def test_default_schedule_is_the_tutorial_graph():
  def graph_ops(schedule):
    with tf.Graph().as_default() as graph:
      step = tf.train.get_or_create_global_step()
      cifar10.learning_rate(step, 1000, 100, cifar10.TUTORIAL_RECIPE, schedule)
      return [(n.name, n.op) for n in graph.as_graph_def().node]
  assert graph_ops(schedules.TUTORIAL_SCHEDULE) == graph_ops(None)
  assert not any('plateau' in name for name, _ in graph_ops(None))
  rates = _rates(None, [0, 349 * 10, 350 * 10])
  np.testing.assert_allclose(rates, [0.1, 0.1, 0.01], rtol=1e-6)


class _ScriptedValidator(object):
  """Returns the given (correct, total) results, one per evaluation."""

  def __init__(self, results):
    self.results = list(results)
    self.calls = 0

  def correct(self, session):
    del session
    self.calls += 1
    return self.results.pop(0)


def test_plateau_decays_exactly_after_patience_evaluations(tmp_path):
  # Evaluations every 2 steps, patience 2; the staircase halves every 7
  # steps (70 examples an epoch, 10 a step). 7/10 is a precision that
  # float32 rounds down: equal to the best, it must not count as better.
  results = [(5, 10), (6, 10), (6, 10), (6, 10), (5, 10), (7, 10), (7, 10),
             (7, 10), (7, 10), (7, 10)]
  # Worked out by hand from the rule: evaluations 4, 8 and 10 are the second
  # in a row without a better precision.
  multiplier_after = [1, 1, 1, .1, .1, .1, .1, .01, .01, .001]
  recipe = cifar10.TUTORIAL_RECIPE._replace(
      num_epochs_per_decay=1.0, learning_rate_decay_factor=0.5)
  schedule = schedules.Schedule(schedules.PLATEAU, 1.0, 2, 2)
  validator = _ScriptedValidator(results)
  seen = []
  with tf.Graph().as_default():
    global_step = tf.train.get_or_create_global_step()
    lr = tf.identity(cifar10.learning_rate(global_step, 70, 10, recipe,
                                           schedule))
    with tf.control_dependencies([lr]):
      train_op = tf.assign_add(global_step, 1)
    hook = schedules.PlateauHook(validator, schedule, 0.1, str(tmp_path))
    with tf.train.MonitoredSession(hooks=[hook]) as sess:
      for _ in range(21):
        step, rate = sess.run([train_op, lr])
        seen.append((step - 1, rate))  # the rate of the step from step - 1
  assert validator.calls == 10
  for step, rate in seen:
    evaluations = step // 2  # those at steps 2, 4, ..., step
    multiplier = multiplier_after[evaluations - 1] if evaluations else 1
    expected = 0.1 * 0.5 ** (step // 7) * multiplier
    assert abs(rate - expected) <= 1e-6 * expected, (step, rate, expected)


def _events(train_dir, tag):
  values = {}
  for path in glob.glob(os.path.join(train_dir, 'events.out.tfevents.*')):
    for event in tf.train.summary_iterator(path):
      for value in event.summary.value:
        if value.tag == tag:
          values[event.step] = value.simple_value
  return values


def _validation_lines(stdout):
  """[(step, precision, decayed)] of the trainer's validation lines."""
  return [(int(m.group(1)), float(m.group(2)), bool(m.group(3)))
          for m in re.finditer(r'step (\d+), validation precision @ 1 = '
                               r'([0-9.]+) \(.*\)(; no improvement.*)?\n',
                               stdout)]


def test_plateau_training_decays_on_time_and_resumes(data_dir, tmp_path):
  # A zero rate leaves the weights, hence the validation precision, as they
  # are: every evaluation after the first is one without improvement.
  train_dir = str(tmp_path / 'train')
  args = ['--data_dir=' + data_dir, '--train_dir=' + train_dir,
          '--batch_size=16', '--lr_schedule=plateau',
          '--validation_examples=50', '--plateau_eval_steps=3',
          '--plateau_patience=2', '--learning_rate=0', '--log_frequency=100',
          '--min_fraction_of_examples_in_queue=0.1']
  first = run_script('cifar10_train.py', '--max_steps=10', *args)
  second = run_script('cifar10_train.py', '--max_steps=17', *args)
  lines = _validation_lines(first.stdout)
  assert [(s, d) for s, _, d in lines] == [(3, False), (6, False), (9, True)]
  precision = lines[0][1]
  assert all(p == precision for _, p, _ in lines)
  # Resumed at step 10, it goes on counting from the evaluation of step 9:
  # a new schedule would take evaluations 12 and 15 as first and second.
  lines = _validation_lines(second.stdout)
  assert [(s, d) for s, _, d in lines] == [(12, False), (15, True)]
  reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(train_dir))
  assert reader.get_tensor('global_step') == 17
  np.testing.assert_allclose(reader.get_tensor('plateau/multiplier'), 0.01,
                             rtol=1e-6)
  assert reader.get_tensor('plateau/evaluations_since_best') == 0
  assert reader.get_tensor('plateau/evaluated_step') == 15
  np.testing.assert_allclose(reader.get_tensor('plateau/best_precision'),
                             precision, atol=1e-3)
  precisions = _events(train_dir, schedules.PRECISION_TAG)
  assert sorted(precisions) == [3, 6, 9, 12, 15]
  np.testing.assert_allclose(list(precisions.values()), precision, atol=1e-3)


def test_plateau_needs_validation_examples(data_dir, tmp_path):
  result = run_script('cifar10_train.py', '--data_dir=' + data_dir,
                      '--train_dir=' + str(tmp_path / 'train'),
                      '--lr_schedule=plateau', '--max_steps=1', check=False)
  assert result.returncode == 1
  assert '--lr_schedule=plateau needs --validation_examples' in result.stderr
  assert 'Traceback' not in result.stderr


def test_cosine_restarts_keeps_cycle_snapshots(data_dir, tmp_path):
  # 300 training records, 20 a step: 15 steps an epoch, a cycle each.
  train_dir = str(tmp_path / 'train')
  result = run_script(
      'cifar10_train.py', '--data_dir=' + data_dir, '--train_dir=' + train_dir,
      '--batch_size=20', '--lr_schedule=cosine_restarts',
      '--restart_epochs=1', '--learning_rate=0.05', '--max_steps=45',
      '--save_checkpoint_steps=5', '--save_summaries_steps=1',
      '--log_frequency=100', '--min_fraction_of_examples_in_queue=0.1')
  kept = re.findall(r'step (\d+), end of a learning-rate cycle: kept (\S+)',
                    result.stdout)
  assert [int(step) for step, _ in kept] == [15, 30, 45]
  snapshots = [os.path.join(train_dir, 'snapshot-%d' % s) for s in (15, 30, 45)]
  assert [path for _, path in kept] == snapshots
  assert schedules.snapshot_paths(train_dir) == snapshots
  for step, path in zip((15, 30, 45), snapshots):
    assert tf.train.load_checkpoint(path).get_tensor('global_step') == step
  # The periodic checkpoints rotate (the last five are kept); the snapshots
  # stay, and the `checkpoint` file still names the periodic ones.
  assert not glob.glob(os.path.join(train_dir, 'model.ckpt-15.*'))
  assert not glob.glob(os.path.join(train_dir, 'model.ckpt-20.*'))
  assert tf.train.latest_checkpoint(train_dir) == os.path.join(
      train_dir, 'model.ckpt-45')
  # The summary written after the step from step s - 1 holds its rate.
  rates = _events(train_dir, 'learning_rate')
  assert len(rates) >= 40
  for tag_step, rate in rates.items():
    np.testing.assert_allclose(rate, _cosine(0.05, 15, tag_step - 1),
                               rtol=1e-5, atol=1e-8)

  evaluation = run_script('cifar10_eval.py', '--data_dir=' + data_dir,
                          '--checkpoint_dir=' + train_dir, '--snapshots',
                          '--eval_dir=' + str(tmp_path / 'eval'))
  members = re.findall(r'global step (\d+), (\S+)\)', evaluation.stdout)
  assert members == [(str(s), p) for s, p in zip((15, 30, 45), snapshots)]
  assert re.search(r'ensemble of 3 checkpoints: precision @ 1 = [0-9.]+ '
                   r'\(\d+/100 correct\)', evaluation.stdout)


def test_snapshots_without_any(data_dir, tmp_path):
  result = run_script('cifar10_eval.py', '--data_dir=' + data_dir,
                      '--checkpoint_dir=' + str(tmp_path), '--snapshots',
                      '--eval_dir=' + str(tmp_path / 'eval'), check=False)
  assert result.returncode == 1
  assert 'no snapshot-<step> checkpoint' in result.stderr
  assert 'Traceback' not in result.stderr


def test_multi_gpu_trainer_keeps_snapshots_per_cycle(data_dir, tmp_path):
  # Two CPU towers of 10: 20 examples a step, 15 steps a cycle of one epoch.
  train_dir = str(tmp_path / 'train')
  result = run_script(
      'cifar10_multi_gpu_train.py', '--num_gpus=2', '--tower_device=cpu',
      '--data_dir=' + data_dir, '--train_dir=' + train_dir,
      '--batch_size=10', '--lr_schedule=cosine_restarts',
      '--restart_epochs=1', '--max_steps=30', '--log_frequency=100',
      '--min_fraction_of_examples_in_queue=0.1')
  kept = re.findall(r'step (\d+), end of a learning-rate cycle', result.stdout)
  assert kept == ['15', '30']
  assert schedules.snapshot_paths(train_dir) == [
      os.path.join(train_dir, 'snapshot-%d' % s) for s in (15, 30)]
