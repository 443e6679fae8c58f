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

import pytest

import fakes
from conftest import one_error_line, run_script, run_unprivileged

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


def test_failed_save_leaves_no_temporary_file_and_a_true_state(tmp_path):
  """What a full disk leaves when the graph (.meta) is the file that fails:
  the saver has already named the checkpoint in the state file, and its
  graph is half-written under a temporary name."""
  from cifar10lib import checkpoints
  from cifar10lib import checkpoint_saver
  from cifar10lib.compat import tf
  train_dir = str(tmp_path)
  prefix = os.path.join(train_dir, 'model.ckpt')
  with tf.Graph().as_default():
    tf.train.get_or_create_global_step()
    tf.get_variable('weights', [1000])
    saver = checkpoint_saver.checkpoint_saver()
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      saver.save(session, prefix, global_step=10)
    before = digests(train_dir)
    for name in ['model.ckpt-30.index', 'model.ckpt-30.data-00000-of-00001',
                 'model.ckpt-30.meta.tmp5c2e9a']:
      with open(os.path.join(train_dir, name), 'wb') as f:
        f.write(b'partial')
    checkpoints.write_state(train_dir, prefix + '-30',
                            [prefix + '-10', prefix + '-30'])
    error = saver._failed(  # pylint: disable=protected-access
        prefix + '-30', False, tf.errors.ResourceExhaustedError(
            None, None, 'model.ckpt-30.meta.tmp5c2e9a; No space left on '
            'device'))
  line = str(error)
  assert len(line.splitlines()) == 1
  assert 'cannot save checkpoint model.ckpt-30: No space left on device' in line
  assert 'its graph included' in line
  after = digests(train_dir)
  assert sorted(after) == sorted(before)
  assert {n: after[n] for n in before if n != 'checkpoint'} == {
      n: d for n, d in before.items() if n != 'checkpoint'}
  with open(os.path.join(train_dir, 'checkpoint')) as f:
    state = f.read()
  assert 'model.ckpt-30' not in state and '"model.ckpt-10"' in state
