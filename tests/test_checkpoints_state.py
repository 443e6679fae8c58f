"""A train directory's checkpoint state: copied, moved, damaged or missing.

Every case runs the scripts as a user would and checks that nothing saved
before was lost or overwritten, and nothing outside --train_dir touched.
"""
import glob
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys

import pytest

from script_runs import as_a_terminal_starts_it
from conftest import (REPO, classify, evaluate, grey_png, one_error_line,
                      run_script)
from fakes import write_dataset

TRAIN = ['--batch_size', '16', '--min_fraction_of_examples_in_queue', '0.05',
         '--save_checkpoint_steps', '10']


@pytest.fixture(scope='module')
def base(tmp_path_factory):
  """(data_dir, train_dir trained to step 20 with checkpoints 0, 10, 20)."""
  root = tmp_path_factory.mktemp('base')
  data = str(root / 'data')
  write_dataset(data)
  train_dir = str(root / 'train')
  run_script('cifar10_train.py', '--data_dir', data, '--train_dir', train_dir,
             '--max_steps', '20', *TRAIN)
  return data, train_dir


def copy_of(base, tmp_path, name='train'):
  path = str(tmp_path / name)
  shutil.copytree(base[1], path)
  return path


def digests(directory):
  """{file name: sha256} of every file under directory."""
  out = {}
  for dirpath, _, files in os.walk(directory):
    for f in files:
      full = os.path.join(dirpath, f)
      with open(full, 'rb') as fh:
        out[os.path.relpath(full, directory)] = hashlib.sha256(
            fh.read()).hexdigest()
  return out


def checkpoint_files(directory, step):
  return sorted(glob.glob(os.path.join(directory, 'model.ckpt-%d.*' % step)))


def write_absolute_state(directory, named_dir, steps=(0, 10, 20)):
  """A state file as the original tutorial writes it: absolute paths."""
  with open(os.path.join(directory, 'checkpoint'), 'w') as f:
    f.write('model_checkpoint_path: "%s/model.ckpt-%d"\n'
            % (named_dir, steps[-1]))
    for step in steps:
      f.write('all_model_checkpoint_paths: "%s/model.ckpt-%d"\n'
              % (named_dir, step))


def test_copy_of_an_absolute_state_resumes_its_own_files_and_leaves_the_source(
    base, tmp_path):
  data = base[0]
  src = copy_of(base, tmp_path, 'src')
  write_absolute_state(src, src)
  copy = copy_of((data, src), tmp_path, 'copy')
  before = digests(src)
  evaluated = evaluate(data, copy, tmp_path)
  assert 'global step 20' in evaluated.stdout
  assert '%s/model.ckpt-20' % copy in evaluated.stdout  # the note names it
  result = run_script('cifar10_train.py', '--data_dir', data, '--train_dir',
                      copy, '--max_steps', '80', *TRAIN)
  assert 'Resuming from %s/model.ckpt-20' % copy in result.stdout
  # Only the note says what the state file named.
  assert [l for l in result.stdout.splitlines() if src + '/' in l] == [
      l for l in result.stdout.splitlines() if l.startswith('Note:')]
  # Seven saves (20 again, 30, ..., 80): rotation ran, on the copy only.
  assert digests(src) == before
  assert checkpoint_files(copy, 80) and not checkpoint_files(copy, 0)
  with open(os.path.join(copy, 'checkpoint')) as f:
    state = f.read()
  assert '"model.ckpt-80"' in state and '/' not in state


def test_moved_directory_is_read_and_resumed(base, tmp_path):
  data = base[0]
  src = copy_of(base, tmp_path, 'src')
  write_absolute_state(src, src)
  moved = str(tmp_path / 'moved')
  os.rename(src, moved)
  evaluated = evaluate(data, moved, tmp_path)
  assert 'global step 20' in evaluated.stdout, evaluated.stdout
  classified = classify(data, moved, grey_png(tmp_path))
  assert re.search(r'img\.png: \w+ \(0\.\d{3}\)', classified.stdout)
  result = run_script('cifar10_train.py', '--data_dir', data, '--train_dir',
                      moved, '--max_steps', '30', *TRAIN)
  assert 'Resuming from %s/model.ckpt-20' % moved in result.stdout
  assert 'step 30' in result.stdout
  assert checkpoint_files(moved, 30)


def test_state_pointing_at_nothing_is_one_line(base, tmp_path):
  data = base[0]
  empty = str(tmp_path / 'empty')
  os.makedirs(empty)
  write_absolute_state(empty, '/nowhere/at/all')
  before = digests(empty)
  trained = run_script('cifar10_train.py', '--data_dir', data, '--train_dir',
                       empty, '--max_steps', '10', *TRAIN, check=False)
  one_error_line(trained, 'cifar10_train.py', '--train_dir', 'checkpoint',
                 '/nowhere/at/all/model.ckpt-20', status=1)
  assert 'Resuming' not in trained.stdout
  evaluated = evaluate(data, empty, tmp_path, check=False)
  one_error_line(evaluated, 'cifar10_eval.py',
                 '/nowhere/at/all/model.ckpt-20', status=1)
  classified = classify(data, empty, grey_png(tmp_path), check=False)
  one_error_line(classified, 'cifar10_classify.py',
                 '/nowhere/at/all/model.ckpt-20', status=1)
  assert digests(empty) == before


@pytest.mark.parametrize('damage', [
    'truncated', 'text', 'binary', 'empty', 'deleted'])
def test_damaged_state_resumes_from_the_newest_checkpoint(base, tmp_path,
                                                          damage):
  data = base[0]
  train_dir = copy_of(base, tmp_path)
  state = os.path.join(train_dir, 'checkpoint')
  if damage == 'truncated':
    with open(state, 'rb') as f:
      content = f.read()
    with open(state, 'wb') as f:
      f.write(content[:35])
  elif damage == 'text':
    with open(state, 'w') as f:
      f.write('this is not a checkpoint state\n')
  elif damage == 'binary':
    with open(state, 'wb') as f:
      f.write(bytes(range(256)))
  elif damage == 'empty':
    open(state, 'w').close()
  else:
    os.remove(state)
  kept = {s: digests_of(checkpoint_files(train_dir, s)) for s in (0, 10)}
  result = run_script('cifar10_train.py', '--data_dir', data, '--train_dir',
                      train_dir, '--max_steps', '30', *TRAIN)
  notes = [l for l in result.stdout.splitlines() if l.startswith('Note:')]
  assert len(notes) == 1 and 'model.ckpt-20' in notes[0], result.stdout
  assert 'Resuming from %s/model.ckpt-20' % train_dir in result.stdout
  assert 'step 1,' not in result.stdout and 'step 30' in result.stdout
  assert {s: digests_of(checkpoint_files(train_dir, s))
          for s in (0, 10)} == kept
  with open(state) as f:
    assert 'model_checkpoint_path: "model.ckpt-30"' in f.read()


def digests_of(paths):
  out = {}
  for path in paths:
    with open(path, 'rb') as f:
      out[path] = hashlib.sha256(f.read()).hexdigest()
  return out


def test_directory_named_checkpoint_is_refused(base, tmp_path):
  data = base[0]
  train_dir = copy_of(base, tmp_path)
  state = os.path.join(train_dir, 'checkpoint')
  os.remove(state)
  os.makedirs(state)
  before = digests(train_dir)
  result = run_script('cifar10_train.py', '--data_dir', data, '--train_dir',
                      train_dir, '--max_steps', '30', *TRAIN, check=False)
  one_error_line(result, 'cifar10_train.py', state, 'is a directory',
                 status=1)
  assert digests(train_dir) == before
  # Evaluation only reads: it finds the newest checkpoint all the same.
  evaluated = evaluate(data, train_dir, tmp_path)
  assert 'global step 20' in evaluated.stdout


def test_latest_checkpoint_moved_away_as_the_readme_advises(base, tmp_path):
  """The state file still names model.ckpt-20; ckpt-10 is the newest left."""
  data = base[0]
  train_dir = copy_of(base, tmp_path)
  elsewhere = str(tmp_path / 'elsewhere')
  os.makedirs(elsewhere)
  for path in checkpoint_files(train_dir, 20):
    shutil.move(path, elsewhere)
  evaluated = evaluate(data, train_dir, tmp_path)
  assert 'global step 10' in evaluated.stdout
  assert 'Traceback' not in evaluated.stderr
  classified = classify(data, train_dir, grey_png(tmp_path))
  assert 'img.png: ' in classified.stdout
  assert 'model.ckpt-10' in classified.stderr  # its note, on stderr
  kept = digests_of(checkpoint_files(train_dir, 0))
  events = set(glob.glob(os.path.join(train_dir, 'events.*')))
  result = run_script('cifar10_train.py', '--data_dir', data, '--train_dir',
                      train_dir, '--max_steps', '20', *TRAIN)
  assert 'Resuming from %s/model.ckpt-10' % train_dir in result.stdout
  assert 'step 20' in result.stdout
  assert digests_of(checkpoint_files(train_dir, 0)) == kept
  assert len(set(glob.glob(os.path.join(train_dir, 'events.*')))) == (
      len(events) + 1)


def test_second_trainer_on_a_directory_refuses_and_eval_runs_beside(
    base, tmp_path):
  data = base[0]
  train_dir = copy_of(base, tmp_path)
  first = subprocess.Popen(
      [sys.executable, os.path.join(REPO, 'cifar10_train.py'), '--data_dir',
       data, '--train_dir', train_dir, '--max_steps', '100000',
       '--log_frequency', '1'] + TRAIN,
      cwd=REPO, preexec_fn=as_a_terminal_starts_it,
      stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      universal_newlines=True)
  try:
    # Once it logs a step it holds the lock and trains.
    for line in first.stdout:
      if 'step 21,' in line:
        break
    else:
      pytest.fail('first trainer ended: %s' % first.stderr.read())
    second = run_script('cifar10_train.py', '--data_dir', data,
                        '--train_dir', train_dir, '--max_steps', '100000',
                        *TRAIN, check=False)
    one_error_line(second, 'cifar10_train.py', train_dir,
                   'process %d' % first.pid, 'another trainer', status=1)
    assert 'Resuming' not in second.stdout
    evaluated = evaluate(data, train_dir, tmp_path)
    assert 'precision @ 1' in evaluated.stdout
  finally:
    first.send_signal(signal.SIGTERM)
    out, err = first.communicate(timeout=120)
  assert first.returncode == 128 + signal.SIGTERM, err
  assert 'Stopped by SIGTERM' in out
  with open(os.path.join(train_dir, 'checkpoint')) as f:
    latest = re.search(r'model_checkpoint_path: "(.*)"', f.read()).group(1)
  assert os.path.exists(os.path.join(train_dir, latest + '.index'))


def test_failed_save_removes_its_partial_files_and_keeps_the_rest(
    base, tmp_path):
  """A write failure injected by a file-size limit (ulimit -f, 4 MB).

  A checkpoint's data file (8.5 MB) cannot be written; the event files and
  graph.pbtxt (under 2 MB) can. Python ignores SIGXFSZ, so the write fails
  with EFBIG as on a full disk.
  """
  data = base[0]
  train_dir = copy_of(base, tmp_path)
  before = digests(train_dir)

  def limited(directory):
    command = ('ulimit -f 4096; exec "$0" "$@"')
    return subprocess.run(
        ['bash', '-c', command, sys.executable,
         os.path.join(REPO, 'cifar10_train.py'), '--data_dir', data,
         '--train_dir', directory, '--max_steps', '30'] + TRAIN,
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        universal_newlines=True, timeout=240)

  result = limited(train_dir)
  # Resuming does not save model.ckpt-20 again: the first save is at 30.
  line = one_error_line(result, 'cifar10_train.py', train_dir,
                        'cannot save checkpoint model.ckpt-30', 'needs about',
                        status=1)
  assert re.search(r'ckpt-30: File too large; .* needs about [0-9.]+ MB',
                   line)
  assert not glob.glob(os.path.join(train_dir, '*_temp*'))
  assert not glob.glob(os.path.join(train_dir, '*.tmp*'))
  after = digests(train_dir)
  for name, digest in before.items():
    if name.startswith(('model.ckpt', 'checkpoint')):
      assert after.get(name) == digest, name
  # Nothing partial is left, so a start without the limit goes on from 20.
  resumed = run_script('cifar10_train.py', '--data_dir', data, '--train_dir',
                       train_dir, '--max_steps', '30', *TRAIN)
  assert 'Resuming from %s/model.ckpt-20' % train_dir in resumed.stdout
  # A directory that the failed start created is removed again.
  new_dir = str(tmp_path / 'new' / 'train')
  result = limited(new_dir)
  one_error_line(result, 'cifar10_train.py', 'cannot save checkpoint '
                 'model.ckpt-0', status=1)
  assert not os.path.exists(new_dir)
  # One that was there keeps nothing of it: no events file, no record.
  os.makedirs(new_dir)
  for _ in range(2):
    result = limited(new_dir)
    one_error_line(result, 'cifar10_train.py', 'cannot save checkpoint '
                   'model.ckpt-0', status=1)
  assert os.listdir(new_dir) == []
