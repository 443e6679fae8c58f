"""Reliability of the scripts against interruptions, as a user meets them.

Every interruption of training (SIGINT, SIGTERM, SIGKILL at any moment) must
leave a directory that resumes from the newest complete checkpoint, saved at
the step reached when the stop was orderly; an evaluator watching a
training directory must read only whole checkpoints, and skip a corrupt one
without stopping. Everything here runs as plain subprocesses.
"""
import os
import re
import signal
import subprocess
import sys
import threading

import pytest

from script_runs import as_a_terminal_starts_it
from conftest import (LOG_LINE, REPO, Proc, logged_steps, run_script,
                      train_args)
from cifar10lib.compat import tf
import fakes

BATCH = '16'
STEP_LINE = re.compile(r': step (\d+), loss = ')
PRECISION_LINE = re.compile(
    r'precision @ 1 = [0-9.]+ \((\d+)/(\d+) correct, global step (\d+), '
    r'(model\.ckpt-\d+)\)')


@pytest.fixture
def data(readonly_data_dir):
  """A good data set, shared: the tests only read it."""
  return readonly_data_dir


@pytest.fixture
def trained(trained_two_steps):
  """A directory trained 2 steps, shared: copy it to change it."""
  return trained_two_steps


def steps_seen(text):
  """The steps of the progress lines in text (a killed run's may be cut)."""
  return [int(m.group(1)) for m in STEP_LINE.finditer(text)]


def wait_for_step(proc, step):
  proc.wait_for(lambda: steps_seen(proc.stdout) and
                steps_seen(proc.stdout)[-1] >= step, 'step %d' % step)


def _resume(data, train_dir, from_checkpoint, from_step,
            script='cifar10_train.py', extra=()):
  """Trains 2 more steps; asserts it resumed exactly where the directory was."""
  result = run_script(script, *train_args(data, train_dir, '--max_steps',
                                          str(from_step + 2), *extra))
  assert 'Resuming from %s' % from_checkpoint in result.stdout
  assert steps_seen(result.stdout) == [from_step + 1, from_step + 2]
  assert fakes.latest_step(train_dir)[1] == from_step + 2


def _stop_with(proc, signum, train_dir, after_step):
  """Signals proc once it logged after_step; returns the checkpointed step."""
  wait_for_step(proc, after_step)
  proc.popen.send_signal(signum)
  # Interrupted, not finished: the status a shell gives (130, 143).
  assert proc.finish() == 128 + signum, proc.stderr
  assert 'Traceback' not in proc.stderr
  checkpoint, step = fakes.latest_step(train_dir)
  # The final checkpoint is at the last step run, and says so.
  assert step == steps_seen(proc.stdout)[-1]
  assert 'Stopped by %s at step %d' % (signal.Signals(signum).name, step) \
      in proc.stdout
  return checkpoint, step


def test_sigint_single_tower_saves_and_resumes(tmp_path, data):
  train_dir = tmp_path / 'train'
  proc = Proc('cifar10_train.py',
              *train_args(data, train_dir, '--max_steps', '100000'))
  checkpoint, step = _stop_with(proc, signal.SIGINT, train_dir, 3)
  _resume(data, train_dir, checkpoint, step)


def test_sigterm_saves_the_step_reached_and_resumes(data, tmp_path):
  train_dir = str(tmp_path / 'train')
  args = [sys.executable, os.path.join(REPO, 'cifar10_train.py'),
          '--data_dir', data, '--train_dir', train_dir,
          '--batch_size', '16', '--log_frequency', '2',
          '--save_summaries_steps', '1000', '--max_steps', '1000000']
  with open(str(tmp_path / 'stderr'), 'w+') as stderr:
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=stderr,
                            universal_newlines=True, cwd=REPO,
                            preexec_fn=as_a_terminal_starts_it)
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
  assert proc.returncode == 128 + signal.SIGTERM, output + errors
  assert 'Traceback' not in errors
  last_logged = logged_steps(output)[-1]
  stopped = re.search(r'Stopped by SIGTERM at step (\d+)', output)
  assert stopped, output
  reached = int(stopped.group(1))
  assert reached >= last_logged
  assert fakes.latest_step(train_dir)[1] == reached

  result = run_script('cifar10_train.py', '--data_dir', data,
                      '--train_dir', train_dir, '--batch_size', '16',
                      '--save_summaries_steps', '1000',
                      '--max_steps', str(reached + 2))
  assert 'Resuming from %s-%d' % (os.path.join(train_dir, 'model.ckpt'),
                                  reached) in result.stdout
  assert fakes.latest_step(train_dir)[1] == reached + 2


def test_sigterm_and_sigint_multi_tower_save_and_resume(tmp_path, data):
  train_dir = tmp_path / 'train'
  towers = ('--num_gpus', '2', '--tower_device', 'cpu')
  args = train_args(data, train_dir, '--max_steps', '100000') + towers
  proc = Proc('cifar10_multi_gpu_train.py', *args)
  checkpoint, step = _stop_with(proc, signal.SIGTERM, train_dir, 2)
  proc = Proc('cifar10_multi_gpu_train.py', *args)
  proc.wait_for(lambda: 'Resuming from %s' % checkpoint in proc.stdout,
                'resuming from %s' % checkpoint)
  checkpoint, step2 = _stop_with(proc, signal.SIGINT, train_dir, step + 2)
  assert steps_seen(proc.stdout)[0] == step + 1
  _resume(data, train_dir, checkpoint, step2, 'cifar10_multi_gpu_train.py',
          towers)


def _kill_when(proc, train_dir, moment):
  """SIGKILLs proc at one of the moments below."""
  if moment == 'writing a checkpoint':
    wait_for_step(proc, 1)
    proc.wait_for(
        lambda: any('_temp' in n for n in os.listdir(str(train_dir))),
        'a checkpoint being written')
  elif moment == 'starting':
    proc.wait_for(lambda: 'Resuming from' in proc.stdout, 'resuming')
  elif moment == 'between steps':
    proc.wait_for(lambda: len(steps_seen(proc.stdout)) >= 3, '3 steps')
  proc.popen.kill()
  proc.finish()


def plant_half_written_save(train_dir, step):
  """Leaves what a save killed half-way at step leaves: a temp dir of parts.

  A killed trainer may have left that very directory already; the parts are
  planted in it all the same.
  """
  temp = os.path.join(str(train_dir), 'model.ckpt-%d_temp' % step)
  os.makedirs(temp, exist_ok=True)
  for name in ('part-00000-of-00002.index',
               'part-00000-of-00002.data-00000-of-00001'):
    with open(os.path.join(temp, name), 'wb') as f:
      f.write(b'\x00\x17half')


def test_sigkill_at_any_moment_leaves_a_resumable_directory(tmp_path, data):
  train_dir = tmp_path / 'train'
  interval = 1  # checkpoints all the time, so kills often land in a save
  args = train_args(data, train_dir, '--save_checkpoint_steps', str(interval))
  highest_logged = 0
  resumed_from = None
  for moment in ('writing a checkpoint', 'starting', 'between steps'):
    proc = Proc('cifar10_train.py', *args + ('--max_steps', '100000'))
    _kill_when(proc, train_dir, moment)
    steps = steps_seen(proc.stdout)
    if resumed_from:
      assert 'Resuming from %s' % resumed_from[0] in proc.stdout
      assert steps[:1] in ([], [resumed_from[1] + 1])
    highest_logged = max([highest_logged] + steps)
    resumed_from = fakes.latest_step(train_dir)  # every tensor readable
    assert resumed_from[1] >= highest_logged - interval, moment
  # Whatever temp files the kills left, and one of a save of the next step
  # (as TensorFlow 2.x names them), must neither be resumed from nor get in
  # the way of saving that step again.
  checkpoint, step = resumed_from
  plant_half_written_save(train_dir, step + 1)
  result = run_script('cifar10_train.py',
                      *args + ('--max_steps', str(step + 2)))
  assert 'Resuming from %s' % checkpoint in result.stdout
  assert steps_seen(result.stdout) == [step + 1, step + 2]
  state = tf.train.get_checkpoint_state(str(train_dir))
  saved = [fakes.checkpoint_step(p) for p in state.all_model_checkpoint_paths]
  assert saved[-3:] == [step, step + 1, step + 2]


def test_evaluation_beside_training_reads_only_whole_checkpoints(tmp_path,
                                                                  data):
  train_dir, eval_dir = tmp_path / 'train', tmp_path / 'eval'
  trainer = Proc('cifar10_train.py',
                 *train_args(data, train_dir, '--max_steps', '30',
                             '--save_checkpoint_steps', '1'))
  evaluator = Proc('cifar10_eval.py', '--data_dir', data,
                   '--checkpoint_dir', str(train_dir),
                   '--eval_dir', str(eval_dir), '--batch_size', BATCH,
                   '--eval_interval_secs', '0')
  assert trainer.finish() == 0, trainer.stderr
  evaluator.wait_for(lambda: 'global step 30,' in evaluator.stdout,
                     'the last checkpoint evaluated')
  evaluator.popen.send_signal(signal.SIGINT)
  assert evaluator.finish() == 0, evaluator.stderr
  results = PRECISION_LINE.findall(evaluator.stdout)
  assert len(results) >= 2, evaluator.stdout
  for correct, total, step, name in results:
    assert total == '100' and name == 'model.ckpt-' + step
  for bad in ('Skipping', 'unreadable', 'Traceback', 'Warning'):
    assert bad not in evaluator.stdout + evaluator.stderr


def test_evaluator_skips_a_corrupt_checkpoint_and_keeps_watching(
    tmp_path, data, trained):
  ckpt_dir = str(tmp_path / 'train')
  good = fakes.copy_train_dir(trained, ckpt_dir)
  # An intact copy, under another name.
  spare = fakes.copy_checkpoint(good, 1000)
  fakes.truncate_data_file(good)
  evaluator = Proc('cifar10_eval.py', '--data_dir', data,
                   '--checkpoint_dir', ckpt_dir,
                   '--eval_dir', str(tmp_path / 'eval'), '--batch_size', BATCH,
                   '--eval_interval_secs', '1')
  evaluator.wait_for(lambda: 'unreadable' in evaluator.stdout,
                     'the corrupt checkpoint reported')
  assert good in evaluator.stdout
  newer = fakes.copy_checkpoint(spare, 3)
  tf.train.update_checkpoint_state(ckpt_dir, newer)
  evaluator.wait_for(lambda: PRECISION_LINE.search(evaluator.stdout),
                     'the newer checkpoint evaluated')
  evaluator.popen.send_signal(signal.SIGINT)
  assert evaluator.finish() == 0, evaluator.stderr
  assert PRECISION_LINE.search(evaluator.stdout).group(4) == 'model.ckpt-3'
  assert 'Traceback' not in evaluator.stderr
