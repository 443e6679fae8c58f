"""Saved work is never destroyed, and never read into the wrong network.

A trainer resuming from an earlier checkpoint than the newest one on disk
(the newest unreadable, or newer than the one the state file names) would
save its next checkpoints under the same names: it sets those aside under a
name saying why and says so in one line. And a directory's checkpoints
carry a record of the options that shaped their graph (run_options.json):
resuming, evaluating or classifying with other ones is refused in one line
naming the option and both values. Each case checks, by sha256, that no
file saved before was changed.
"""
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys

import pytest

import fakes
from conftest import REPO, one_error_line, run_script, run_unprivileged

TRAIN = ['--batch_size', '16', '--min_fraction_of_examples_in_queue', '0.05']


@pytest.fixture(scope='module')
def base(tmp_path_factory):
  """(data_dir, train_dir with checkpoints 0, 10 and 20, trained with
  --norm=none)."""
  root = tmp_path_factory.mktemp('saved_work')
  data = str(root / 'data')
  fakes.write_dataset(data)
  train_dir = str(root / 'train')
  run_script('cifar10_train.py', '--data_dir', data, '--train_dir', train_dir,
             '--max_steps', '20', '--save_checkpoint_steps', '10',
             '--norm', 'none', *TRAIN)
  return data, train_dir


def copy_of(base, tmp_path):
  path = str(tmp_path / 'train')
  shutil.copytree(base[1], path)
  return path


def digests(directory):
  """{file name: sha256} of every file in directory."""
  out = {}
  for name in os.listdir(directory):
    with open(os.path.join(directory, name), 'rb') as f:
      out[name] = hashlib.sha256(f.read()).hexdigest()
  return out


def resume(data, train_dir, max_steps, *extra):
  return run_script('cifar10_train.py', '--data_dir', data, '--train_dir',
                    train_dir, '--max_steps', str(max_steps),
                    '--save_checkpoint_steps', '5', '--norm', 'none',
                    *(TRAIN + list(extra)), check=False, timeout=180)


def assert_set_aside(before, after, step, suffix):
  """Every file of model.ckpt-<step> is kept, unchanged, under its suffix."""
  names = [n for n in before if n.startswith('model.ckpt-%d.' % step)]
  assert len(names) == 4, names
  for name in names:
    assert after[name + '.' + suffix] == before[name], name


def assert_unchanged_up_to(before, after, step):
  """Checkpoints up to step (the one resumed from too) are as they were."""
  for name, digest in before.items():
    match = re.match(r'model\.ckpt-(\d+)\.', name)
    if match and int(match.group(1)) <= step:
      assert after[name] == digest, name


def test_unreadable_newest_without_state_file_is_set_aside(base, tmp_path):
  data = base[0]
  train_dir = copy_of(base, tmp_path)
  os.remove(os.path.join(train_dir, 'checkpoint'))
  fakes.truncate_data_file(os.path.join(train_dir, 'model.ckpt-20'))
  before = digests(train_dir)
  result = resume(data, train_dir, 25)
  assert result.returncode == 0, result.stderr
  notes = [l for l in result.stdout.splitlines() if 'set aside' in l]
  assert len(notes) == 1, result.stdout
  assert notes[0].startswith('Note: set aside model.ckpt-20 (unreadable: ')
  assert 'as model.ckpt-20.*.unreadable' in notes[0]
  assert 'Resuming from %s/model.ckpt-10' % train_dir in result.stdout
  after = digests(train_dir)
  assert_set_aside(before, after, 20, 'unreadable')
  assert_unchanged_up_to(before, after, 10)
  assert fakes.latest_step(train_dir)[1] == 25


def test_checkpoint_newer_than_the_state_file_names_is_kept(base, tmp_path):
  data = base[0]
  train_dir = copy_of(base, tmp_path)
  with open(os.path.join(train_dir, 'checkpoint'), 'w') as f:
    f.write('model_checkpoint_path: "model.ckpt-10"\n'
            'all_model_checkpoint_paths: "model.ckpt-0"\n'
            'all_model_checkpoint_paths: "model.ckpt-10"\n')
  before = digests(train_dir)
  result = resume(data, train_dir, 25)
  assert result.returncode == 0, result.stderr
  assert ('Note: set aside model.ckpt-20 (newer than the checkpoint resumed '
          'from) as model.ckpt-20.*.superseded, so that training from '
          'model.ckpt-10 does not overwrite it.') in result.stdout
  after = digests(train_dir)
  assert_set_aside(before, after, 20, 'superseded')
  assert_unchanged_up_to(before, after, 10)


def test_permission_denied_checkpoint_is_set_aside(base, tmp_path):
  data = base[0]
  train_dir = copy_of(base, tmp_path)
  os.remove(os.path.join(train_dir, 'checkpoint'))
  before = digests(train_dir)
  locked = os.path.join(train_dir, 'model.ckpt-20.data-00001-of-00002')
  os.chmod(locked, 0)
  try:
    result = run_unprivileged(tmp_path, 'cifar10_train.py', '--data_dir', data,
                          '--train_dir', train_dir, '--max_steps', '12',
                          '--norm', 'none', *TRAIN)
  finally:
    os.chmod(locked + '.unreadable' if os.path.exists(
        locked + '.unreadable') else locked, 0o644)
  assert result.returncode == 0, result.stderr
  assert ('Note: set aside model.ckpt-20 (unreadable: model.ckpt-20.data-'
          '00001-of-00002: permission denied)') in result.stdout
  after = digests(train_dir)
  assert_set_aside(before, after, 20, 'unreadable')
  assert_unchanged_up_to(before, after, 10)


def test_other_graph_options_are_refused_everywhere(base, tmp_path):
  """--norm=none trained; the default --norm=lrn has no variables to differ."""
  data, train_dir = base
  before = digests(train_dir)
  checkpoint_dir = '--checkpoint_dir=%s' % train_dir
  expected = ('%s was trained with --norm=none, not --norm=lrn (recorded in '
              'run_options.json)' % train_dir)
  trained = run_script('cifar10_train.py', '--data_dir', data, '--train_dir',
                       train_dir, '--max_steps', '30', *TRAIN, check=False,
                       timeout=120)
  one_error_line(trained, 'cifar10_train.py', '--train_dir=' + expected)
  # The options are checked before any image is read, after the variables.
  image = str(tmp_path / 'cat.png')
  for script, args in [
      ('cifar10_eval.py', ['--run_once', '--eval_dir', str(tmp_path / 'e')]),
      ('cifar10_classify.py', [image]),
  ]:
    result = run_script(script, '--data_dir', data, checkpoint_dir, *args,
                        check=False, timeout=120)
    one_error_line(result, script, 'error: ' + expected)
  assert digests(train_dir) == before
  # With the options it was trained with, it evaluates.
  result = run_script('cifar10_eval.py', '--data_dir', data, checkpoint_dir,
                      '--norm', 'none', '--run_once', '--eval_dir',
                      str(tmp_path / 'e'), '--batch_size', '16', timeout=120)
  assert 'precision @ 1' in result.stdout
  assert digests(train_dir) == before


def test_directory_without_a_record_is_used_unchecked(base, tmp_path):
  data = base[0]
  train_dir = copy_of(base, tmp_path)
  os.remove(os.path.join(train_dir, 'run_options.json'))
  result = run_script('cifar10_eval.py', '--data_dir', data,
                      '--checkpoint_dir', train_dir, '--run_once',
                      '--eval_dir', str(tmp_path / 'e'), '--batch_size', '16',
                      timeout=120)
  assert 'precision @ 1' in result.stdout and not result.stderr


def test_nothing_to_train_writes_nothing_in_a_copied_directory(base,
                                                               tmp_path):
  """A copy whose state file names the source's absolute paths."""
  data = base[0]
  train_dir = copy_of(base, tmp_path)
  with open(os.path.join(train_dir, 'checkpoint'), 'w') as f:
    f.write('model_checkpoint_path: "%s/model.ckpt-20"\n' % base[1])
  before = digests(train_dir)
  result = resume(data, train_dir, 20)
  assert result.returncode == 0, result.stderr
  assert 'nothing to train' in result.stdout
  assert digests(train_dir) == before


def test_record_is_written_atomically_and_names_the_options(base):
  with open(os.path.join(base[1], 'run_options.json')) as f:
    text = f.read()
  assert '"norm": "none"' in text and '"model": "tutorial"' in text
  assert not glob.glob(os.path.join(base[1], '*.tmp'))


# Runs in a mount namespace of its own: the tmpfs is gone when it ends, even
# if the test is killed. $1 mount point, $2 directory to copy in, $3 bytes
# to leave free, $4 where to copy the result out; the rest: the trainer.
FULL_DISK = r'''
set -e
mount -t tmpfs -o size=64m tmpfs "$1"
cp -a "$2" "$1/train"
"$5" -c 'import os, shutil, sys
free = shutil.disk_usage(sys.argv[1]).free - int(sys.argv[2])
with open(os.path.join(sys.argv[1], "filler"), "wb") as f:
  os.posix_fallocate(f.fileno(), 0, free)' "$1" "$3"
mount_point=$1 out=$4
shift 4
set +e
"$@"
status=$?
cp -a "$mount_point/train" "$out"
exit $status
'''


def test_disk_full_at_the_graph_leaves_no_temporary_file_and_a_true_state(
    base, tmp_path):
  """A real full disk (a tmpfs) with room for the next checkpoint's
  variables but not its graph (.meta): the saver has already named the
  checkpoint in the state file, and has half-written its graph under a
  temporary name, when the write fails."""
  probe = subprocess.run(['unshare', '-m', 'true'], stderr=subprocess.PIPE,
                         universal_newlines=True)
  if probe.returncode != 0:
    pytest.skip('cannot make a mount namespace for a small tmpfs (needs '
                'root): ' + probe.stderr.strip())
  data = base[0]
  # What the resumed run writes up to its save at 25: its events file and
  # the checkpoint; the disk is left half the graph short of that.
  free_run = copy_of(base, tmp_path)
  before = digests(free_run)
  assert resume(data, free_run, 25).returncode == 0
  added = {n: os.path.getsize(os.path.join(free_run, n))
           for n in os.listdir(free_run) if n not in before}
  graph = added['model.ckpt-25.meta']
  room = sum(size for name, size in added.items()
             if not name.startswith('model.ckpt-25.meta')) + 4096 * len(added)
  mount_point = str(tmp_path / 'disk')
  os.mkdir(mount_point)
  out = str(tmp_path / 'after')
  result = subprocess.run(
      ['unshare', '-m', 'bash', '-c', FULL_DISK, 'full_disk', mount_point,
       base[1], str(room + graph // 2), out, sys.executable,
       os.path.join(REPO, 'cifar10_train.py'), '--data_dir', data,
       '--train_dir', mount_point + '/train', '--max_steps', '25',
       '--save_checkpoint_steps', '5', '--norm', 'none'] + TRAIN,
      cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      universal_newlines=True, timeout=180)
  line = one_error_line(result, 'cifar10_train.py', 'cannot save checkpoint '
                        'model.ckpt-25: No space left on device', status=1)
  needed, free = re.search(r'needs about ([0-9.]+) MB.*\(([0-9.]+) MB free\)',
                           line).groups()
  assert float(needed) >= float(free), line
  after = digests(out)
  assert not [n for n in after if 'tmp' in n or '_temp' in n], sorted(after)
  assert not [n for n in after if n.startswith('model.ckpt-25')]
  assert_unchanged_up_to(digests(base[1]), after, 20)
  with open(os.path.join(out, 'checkpoint')) as f:
    named = re.findall(r'"(model\.ckpt-\d+)"', f.read())
  assert named and all(n + '.index' in after for n in named), named
  # The directory, copied off the full disk, resumes where it was.
  resumed = resume(data, out, 25)
  assert resumed.returncode == 0, resumed.stderr
  assert 'Resuming from %s/model.ckpt-20' % out in resumed.stdout
