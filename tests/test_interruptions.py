"""Interruptions, as a user meets them: signals, kills and waits.

Every interruption of training (SIGINT, SIGTERM, SIGHUP, SIGKILL at any
moment) must leave a directory that resumes from the newest complete
checkpoint, saved at the step reached when the stop was orderly, and exit
with the status a shell gives a signalled process; an evaluator watching a
training directory must read only whole checkpoints, and skip a corrupt one
without stopping. A script is also signalled where it waits on something:
during TensorFlow's import, during a download served slowly from 127.0.0.1,
and while a step waits on input that has run dry. Everything here runs as
plain subprocesses, started as a terminal starts them.
"""
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from script_runs import as_a_terminal_starts_it
from conftest import (LOG_LINE, REPO, Proc, logged_steps, run_script,
                      train_args)
from cifar10lib.base.compat import tf
from cifar10lib.evaluation import evaluation
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
  # Long enough (a save every step) that the evaluator, which looks at a
  # first checkpoint that did not read again 2 s later, scores several.
  trainer = Proc('cifar10_train.py',
                 *train_args(data, train_dir, '--max_steps', '100',
                             '--save_checkpoint_steps', '1'))
  evaluator = Proc('cifar10_eval.py', '--data_dir', data,
                   '--checkpoint_dir', str(train_dir),
                   '--eval_dir', str(eval_dir), '--batch_size', BATCH,
                   '--eval_interval_secs', '0')
  assert trainer.finish() == 0, trainer.stderr
  evaluator.wait_for(lambda: 'global step 100,' in evaluator.stdout,
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


def test_a_ctrl_c_while_the_summary_is_written_waits_for_the_write():
  before = signal.getsignal(signal.SIGINT)
  finished = False
  try:
    with pytest.raises(KeyboardInterrupt):
      with evaluation.sigint_held():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)       # a raising handler would have run by now
        finished = True
  finally:
    signal.signal(signal.SIGINT, before)
  assert finished


# --- Where a script waits: TensorFlow's import, a download, dry input.

INTERRUPTED = 130      # the shell's status for SIGINT


def _tensorflow_loading(pid):
  try:
    with open('/proc/%d/maps' % pid) as f:
      return 'tensorflow' in f.read()
  except IOError:
    return False


def test_sigint_while_tensorflow_loads_exits_quietly(tmp_path):
  proc = Proc('cifar10_train.py', '--data_dir', str(tmp_path / 'data'),
              '--train_dir', str(tmp_path / 'train'))
  # TensorFlow's libraries mapped: the import is under way, before any
  # flag is parsed.
  proc.wait_for(lambda: _tensorflow_loading(proc.popen.pid),
                'TensorFlow to load')
  proc.popen.send_signal(signal.SIGINT)
  assert proc.finish() == INTERRUPTED, (proc.stdout, proc.stderr)
  assert 'Traceback' not in proc.stderr, proc.stderr
  assert len(proc.stderr.splitlines()) <= 1, proc.stderr
  assert not os.listdir(str(tmp_path))


@pytest.fixture
def slow_server():
  """The URL of a tarball that never finishes downloading."""
  with fakes.DownloadServer() as server:
    yield server.serve_slowly('/cifar-10-binary.tar.gz', 10 ** 7, chunk=100,
                              interval=0.05)


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM,
                                 signal.SIGHUP])
def test_stop_signal_during_download_leaves_nothing(tmp_path, slow_server,
                                                    sig):
  data_dir = tmp_path / 'new' / 'data'
  proc = Proc('cifar10_train.py', '--data_dir', str(data_dir),
              '--train_dir', str(tmp_path / 'train'),
              '--data_url', slow_server)

  def downloading():
    return data_dir.is_dir() and any(
        name.endswith('.part') and os.path.getsize(str(data_dir / name))
        for name in os.listdir(str(data_dir)))
  proc.wait_for(downloading, 'the download to start')
  started = time.time()
  proc.popen.send_signal(sig)
  rc = proc.finish()
  out, err = proc.stdout, proc.stderr
  assert time.time() - started < 30, 'the download went on after %s' % sig
  assert rc == 128 + sig, (out, err)
  lines = [line for line in err.splitlines() if not line.startswith('>>')]
  assert lines == ['cifar10_train.py: error: interrupted (%s); stopped'
                   % signal.Signals(sig).name], err
  # The wait said what it waited for, before the server answered at all.
  assert ('Downloading %s into %s (given up after 3600 s: '
          '--download_deadline_secs)' % (slow_server, data_dir)
          in out.splitlines()), out
  # The partial file, the directories it made: all gone.
  assert not (tmp_path / 'new').exists()
  assert not (tmp_path / 'train').exists()


def _start_training(tmp_path, *extra):
  """A trainer on its own copy of the data, past step 20."""
  data_dir = tmp_path / 'data'
  fakes.write_dataset(data_dir)
  train_dir = tmp_path / 'train'
  proc = Proc('cifar10_train.py', *train_args(
      data_dir, train_dir, '--min_fraction_of_examples_in_queue', '0.05',
      '--max_steps', '100000', *extra))
  wait_for_step(proc, 20)
  return proc, data_dir, train_dir


def _run_dry(data_dir):
  for name in os.listdir(str(data_dir / 'cifar-10-batches-bin')):
    if name.startswith('data_batch_'):
      open(str(data_dir / 'cifar-10-batches-bin' / name), 'w').close()


def _stopped_at(proc, name, train_dir):
  """The step of the one 'Stopped by NAME' line, checkpointed there."""
  stopped = [line for line in proc.stdout.splitlines()
             if line.startswith('Stopped')]
  assert len(stopped) == 1 and ('Stopped by %s at step' % name) in stopped[0]
  step = int(stopped[0].split('at step ')[1].split(';')[0])
  assert step >= 20 and fakes.latest_step(train_dir)[1] == step
  return step


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_a_trainer_whose_input_ran_dry(tmp_path, sig):
  proc, data_dir, train_dir = _start_training(tmp_path)
  _run_dry(data_dir)
  # The queue holds a little more than a batch: the step then waits.
  time.sleep(5)
  assert proc.popen.poll() is None
  proc.popen.send_signal(sig)
  # A shell's status for a process the signal ended: not a finished run.
  assert proc.finish() == 128 + sig, (proc.stdout, proc.stderr)
  _stopped_at(proc, signal.Signals(sig).name, train_dir)
  assert 'Traceback' not in proc.stderr


def test_dry_input_ends_after_input_timeout(tmp_path):
  proc, data_dir, train_dir = _start_training(
      tmp_path, '--input_timeout_secs', '3')
  _run_dry(data_dir)
  assert proc.finish() == 1, (proc.stdout, proc.stderr)
  err = proc.stderr
  assert len(err.splitlines()) == 1, err
  assert err.startswith('cifar10_train.py: error: no training step finished '
                        'within 3 s (--input_timeout_secs)')
  assert 'the input produced nothing' in err and str(train_dir) in err
  # The session was sound: it saved the step it reached.
  step = int(err.split('checkpoint saved at step ')[1].split()[0])
  assert step >= 20 and fakes.latest_step(train_dir)[1] == step


def test_sighup_stops_after_the_step_with_a_checkpoint(tmp_path):
  proc, _, train_dir = _start_training(tmp_path)
  proc.popen.send_signal(signal.SIGHUP)
  assert proc.finish() == 128 + signal.SIGHUP, (proc.stdout, proc.stderr)
  _stopped_at(proc, 'SIGHUP', train_dir)
