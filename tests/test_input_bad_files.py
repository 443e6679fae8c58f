"""Data files that cannot be read, or vanish while training: one line each.

A batch file that exists but cannot be read (its mode), a directory where a
batch file belongs, and training files removed (not emptied) while a trainer
reads them used to end in tracebacks or in the wrong words ("file not
found"). Each is one line naming the file, a non-zero exit, in bounded
time, and the checkpoints saved before are kept as they were.
"""
import hashlib
import os
import time

import fakes
from conftest import Proc, one_error_line, run_script, run_unprivileged

TRAIN = ['--batch_size', '16', '--min_fraction_of_examples_in_queue', '0.05']


def batches(data_dir):
  return os.path.join(data_dir, 'cifar-10-batches-bin')


def test_directory_in_place_of_a_batch_file(tmp_path):
  data = str(tmp_path / 'data')
  fakes.write_dataset(data)
  path = os.path.join(batches(data), 'data_batch_2.bin')
  os.remove(path)
  os.mkdir(path)
  train_dir = str(tmp_path / 'train')
  result = run_script('cifar10_train.py', '--data_dir', data, '--train_dir',
                      train_dir, *TRAIN, check=False, timeout=120)
  line = one_error_line(result, 'cifar10_train.py', path)
  assert line.endswith('%s: is a directory, not a batch file' % path), line
  assert result.returncode == 1
  assert not os.path.exists(train_dir)


def test_unreadable_batch_file_in_training_and_evaluation(tmp_path):
  data = str(tmp_path / 'data')
  fakes.write_dataset(data)
  for script, name, args in [
      ('cifar10_train.py', 'data_batch_3.bin',
       ['--train_dir', str(tmp_path / 'train')] + TRAIN),
      ('cifar10_eval.py', 'test_batch.bin',
       ['--checkpoint_dir', str(tmp_path / 'none'), '--eval_dir',
        str(tmp_path / 'eval'), '--run_once']),
  ]:
    path = os.path.join(batches(data), name)
    os.chmod(path, 0)
    try:
      started = time.time()
      result = run_unprivileged(tmp_path, script, '--data_dir', data, *args)
    finally:
      os.chmod(path, 0o644)
    assert time.time() - started < 120
    line = one_error_line(result, script, path)
    assert line.endswith('%s: cannot read it: Permission denied' % path), line
    assert result.returncode == 1
    assert os.listdir(str(tmp_path)) == ['data']


def _digests(train_dir, names):
  out = {}
  for name in names:
    with open(os.path.join(train_dir, name), 'rb') as f:
      out[name] = hashlib.sha256(f.read()).hexdigest()
  return out


def test_training_files_removed_while_training(tmp_path):
  data = str(tmp_path / 'data')
  fakes.write_dataset(data)
  train_dir = str(tmp_path / 'train')
  proc = Proc('cifar10_train.py', '--data_dir', data, '--train_dir',
              train_dir, '--max_steps', '1000000', '--log_frequency', '5',
              '--save_checkpoint_steps', '10', *TRAIN)
  proc.wait_for(lambda: os.path.exists(
      os.path.join(train_dir, 'model.ckpt-10.index')), 'checkpoint 10')
  saved = [n for n in os.listdir(train_dir) if n.startswith('model.ckpt-0.')]
  before = _digests(train_dir, saved)
  for name in os.listdir(batches(data)):
    if name.startswith('data_batch_'):
      os.remove(os.path.join(batches(data), name))
  removed = time.time()
  rc = proc.finish(timeout=120)
  # An epoch is 19 steps here: the next file opened is gone.
  assert time.time() - removed < 100
  assert rc == 1, proc.stderr
  lines = proc.stderr.splitlines()
  assert len(lines) == 1, proc.stderr
  assert lines[0].startswith('cifar10_train.py: error: training stopped at '
                             'step '), lines[0]
  assert 'data_batch_' in lines[0] and 'was a training file removed?' in lines[0]
  assert 'the last checkpoint in %s is kept' % train_dir in lines[0]
  assert _digests(train_dir, saved) == before
