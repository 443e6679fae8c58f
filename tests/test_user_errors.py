"""User mistakes, as a user meets them: one line, and nothing changed.

Every user mistake (a flag out of range, a bad data file, data that cannot
be downloaded, a directory that cannot be written, a checkpoint of another
model or a corrupt one) must end in one line on stderr naming the flag or
file, a non-zero exit, no traceback and no change to what was on disk.

Each test states its mistake and the words its error must hold; the
function named in its @arranged_by sets the mistake up. The `mistakes`
fixture arranges the mistakes of every selected test of this module, then
runs them one after the other (each forked from script_runs' zygote, which
has imported TensorFlow already: the mistakes fail within a second, and the
import would be most of their cost); test_forked_case_matches_plain_subprocess
checks that a forked case and a plain `python script.py` give the same
result.
"""
import os
import shutil
import subprocess

import numpy as np
import pytest

from conftest import (assert_unchanged, one_error_line, run_script,
                      run_scripts, snapshot)
from cifar10lib.base import errors
from cifar10lib.data import datasets
from cifar10lib.training import cifar10
import fakes

BATCH = '16'
SCRIPTS = {'train': 'cifar10_train.py', 'eval': 'cifar10_eval.py'}


# ---------------------------------------------------------------------------
# The batch of mistakes


class Case(object):
  """One mistake: a script's argv and the paths it must leave as they were.

  facts (the file a case broke, the checkpoint it wrote...) become
  attributes, for the test to name in the words it expects. The batch adds
  result (a CompletedProcess) and the snapshots before and after.
  """

  def __init__(self, argv, roots, eval_dir=None, **facts):
    self.argv = list(argv)
    self.script = self.argv[0]
    self.roots = [str(root) for root in roots]
    self.eval_dir = eval_dir
    self.__dict__.update(facts)

  def error_line(self, *words):
    """Asserts one error line holding words; returns it."""
    return one_error_line(self.result, self.script, *words)

  def assert_nothing_changed(self):
    assert_unchanged(self.before, self.after, self.eval_dir)


class Batch(object):
  """The arranged cases, and what they share; runs them."""

  def __init__(self, root, request):
    self.root = str(root)
    self.cases = {}  # test node id -> Case, or the reason to skip it
    self._request = request
    self._cleanups = []
    self._made = 0
    self._untouched = self._locked = None

  def fresh_path(self, name):
    """A path under the batch's root that nothing has used yet."""
    self._made += 1
    return os.path.join(self.root, '%s-%d' % (name, self._made))

  def eval_dir(self):
    """A fresh --eval_dir, holding earlier results."""
    path = self.fresh_path('eval')
    os.makedirs(path)
    with open(os.path.join(path, 'earlier-results.txt'), 'w') as f:
      f.write('precision @ 1 = 0.5\n')
    return path

  @property
  def data(self):
    """A good data directory, for the mistakes that are not about data."""
    return self._request.getfixturevalue('readonly_data_dir')

  @property
  def trained(self):
    return self._request.getfixturevalue('trained_two_steps')

  @property
  def server(self):
    return self._request.getfixturevalue('served')

  @property
  def untouched(self):
    """A training directory with work in it, which no mistake may touch."""
    if self._untouched is None:
      self._untouched = self.fresh_path('work')
      fakes.copy_train_dir(self.trained, self._untouched)
    return self._untouched

  def locked(self):
    """(a directory nobody can create files in, or None; how it is locked)."""
    if self._locked is None:
      path = self.fresh_path('locked')
      how = _lock_directory(path)
      if how:
        self._cleanups.append(lambda: _unlock_directory(path))
      self._locked = (path if how else None, how)
    return self._locked

  def run(self):
    order = sorted(n for n, case in self.cases.items()
                   if isinstance(case, Case))
    for name in order:
      case = self.cases[name]
      case.before = snapshot(*case.roots)
    results = run_scripts([self.cases[n].argv for n in order])
    for name, result in zip(order, results):
      case = self.cases[name]
      case.result = result
      case.after = snapshot(*case.roots)

  def cleanup(self):
    for cleanup in self._cleanups:
      cleanup()


def arranged_by(arrange, **fixed):
  """Marks a test whose mistake arrange(batch, **params) sets up.

  params are the test's parameters and fixed; arrange returns a Case, or a
  string: the reason the test must be skipped here.
  """
  def mark(test):
    test.arrange = lambda batch, **params: arrange(batch,
                                                   **dict(params, **fixed))
    return test
  return mark


@pytest.fixture(scope='module')
def mistakes(request, tmp_path_factory):
  """Arranges the mistake of every selected test here, then runs them all."""
  batch = Batch(tmp_path_factory.mktemp('mistakes'), request)
  try:
    for item in request.session.items:
      arrange = getattr(getattr(item, 'function', None), 'arrange', None)
      if arrange is None or item.module is not request.module:
        continue
      callspec = getattr(item, 'callspec', None)
      batch.cases[item.nodeid] = arrange(
          batch, **(callspec.params if callspec else {}))
    batch.run()
  finally:
    batch.cleanup()
  return batch


@pytest.fixture
def mistake(mistakes, request):
  """This test's Case, run."""
  case = mistakes.cases[request.node.nodeid]
  if not isinstance(case, Case):
    pytest.skip(case)
  return case


@pytest.fixture(scope='module')
def served(download_server):
  """The download server with good, truncated and unusable tarballs."""
  good = fakes.tarball(fakes.dataset_members(train_per_file=3,
                                             test_records=3))
  download_server.serve('/good.tar.gz', good)
  download_server.serve('/truncated.tar.gz', good[:len(good) // 3],
                        announced=len(good))
  download_server.serve('/not-gzip.tar.gz',
                        b'<html>not a tarball</html>\n' * 50)
  download_server.serve('/no-batches.tar.gz', fakes.tarball(
      fakes.dataset_members('some-other-dir', train_per_file=3,
                            test_records=3)))
  return download_server


def dirs_for(script, work, eval_dir):
  """The directory flags of script, pointing at work and eval_dir."""
  if script == 'cifar10_eval.py':
    return ['--checkpoint_dir', work, '--eval_dir', eval_dir, '--run_once']
  return ['--train_dir', work, '--max_steps', '5']


def _lock_directory(path):
  """Makes path a directory nobody can create files in; returns how, or None.

  Permission bits do that for a normal user. Root ignores them, so for root
  the directory is made immutable (chattr +i), which binds root too; where
  that is not possible (no chattr, a file system without the attribute, no
  CAP_LINUX_IMMUTABLE) there is no honest way to test it and None is returned.
  """
  os.makedirs(path)
  if os.geteuid() != 0:
    os.chmod(path, 0o555)
    return 'chmod 555'
  if shutil.which('chattr') is None:
    return None
  if subprocess.call(['chattr', '+i', path], stderr=subprocess.DEVNULL):
    return None
  try:
    open(os.path.join(path, 'probe'), 'w').close()
  except OSError:
    return 'chattr +i'
  _unlock_directory(path)
  os.remove(os.path.join(path, 'probe'))
  return None


def _unlock_directory(path):
  if os.geteuid() != 0:
    os.chmod(path, 0o755)
  else:
    subprocess.call(['chattr', '-i', path], stderr=subprocess.DEVNULL)


# ---------------------------------------------------------------------------
# Flags


def _flag_case(batch, script, flag, value):
  scratch = os.path.join(batch.root, 'scratch')  # must not even be created
  return Case([script, '--data_dir', batch.data] +
              dirs_for(script, scratch, scratch) + [flag, value],
              [batch.data, batch.untouched, scratch])


@arranged_by(_flag_case)
@pytest.mark.parametrize('script,flag,value', [
    pytest.param('cifar10_train.py', '--batch_size', '0',
                 id='batch_size_zero'),
    pytest.param('cifar10_eval.py', '--batch_size', '-1',
                 id='batch_size_negative'),
    pytest.param('cifar10_train.py', '--max_steps', '-1',
                 id='max_steps_negative'),
    pytest.param('cifar10_multi_gpu_train.py', '--num_gpus', '0',
                 id='num_gpus_zero'),
    pytest.param('cifar10_train.py', '--log_frequency', '0',
                 id='log_frequency_zero'),
    pytest.param('cifar10_eval.py', '--num_examples', '0',
                 id='num_examples_zero'),
    pytest.param('cifar10_eval.py', '--eval_data', 'holdout',
                 id='eval_data_other')])
def test_flag_out_of_range(mistake, script, flag, value):
  mistake.error_line(flag)
  assert mistake.result.returncode == 2   # a usage error, as absl gives
  mistake.assert_nothing_changed()


# ---------------------------------------------------------------------------
# Data


def _bad_file_case(batch, script, how, **_):
  """A copy of the good data with one file broken (record 7 for 'label')."""
  name = {'train': 'data_batch_3.bin', 'eval': 'test_batch.bin'}[script]
  script = SCRIPTS[script]
  copy = batch.fresh_path('data')
  shutil.copytree(batch.data, copy)
  path = fakes.break_file(
      os.path.join(copy, fakes.CIFAR10.batches_dir, name), how, record=7)
  eval_dir = batch.eval_dir()
  return Case([script, '--data_dir', copy, '--batch_size', BATCH] +
              dirs_for(script, batch.untouched, eval_dir),
              [copy, batch.untouched, eval_dir], eval_dir=eval_dir, path=path)


@arranged_by(_bad_file_case)
@pytest.mark.parametrize('how,words', [
    ('missing', 'not found'), ('empty', 'size 0 bytes'),
    ('size', 'not a positive multiple of the record size 3073'),
    ('label', 'record 7 has label 10')],
    ids=['missing', 'empty', 'size', 'label'])
@pytest.mark.parametrize('script', ['train', 'eval'])
def test_bad_batch_file(mistake, script, how, words):
  mistake.error_line(mistake.path, words)
  mistake.assert_nothing_changed()


@arranged_by(_bad_file_case, script='train', how='label')
def test_forked_case_matches_plain_subprocess(mistake):
  plain = run_script(*mistake.argv, check=False, fresh=True)
  assert plain.returncode == mistake.result.returncode
  assert plain.stdout == mistake.result.stdout
  assert plain.stderr == mistake.result.stderr


def _download_case(batch, script='train', route=None, **_):
  """A --data_dir that does not exist, nor its parent, and a --data_url."""
  script = SCRIPTS[script]
  source = batch.server.dead_url if route is None else batch.server.url(route)
  parent = batch.fresh_path('download')
  target = os.path.join(parent, 'cifar10_data')
  eval_dir = batch.eval_dir()
  return Case([script, '--data_dir', target, '--data_url', source] +
              dirs_for(script, batch.untouched, eval_dir),
              [parent, batch.untouched, eval_dir], eval_dir=eval_dir,
              target=target, source=source)


@arranged_by(_download_case)
@pytest.mark.parametrize('script', ['train', 'eval'])
def test_data_dir_that_cannot_be_downloaded(mistake, script):
  # The server's dead_url: a port that refuses connections.
  mistake.error_line('--data_dir=' + mistake.target, mistake.source,
                     'by hand')
  mistake.assert_nothing_changed()
  # Nothing was left behind, not even the directory the download made.
  assert not os.path.exists(mistake.target)


@arranged_by(_download_case)
@pytest.mark.parametrize('route,words', [
    ('/good.tar.gz', ['checksum mismatch', datasets.CIFAR10.md5]),
    ('/truncated.tar.gz', ['truncated'])], ids=['checksum', 'truncated'])
def test_bad_download(mistake, route, words):
  mistake.error_line('--data_dir=' + mistake.target, mistake.source, *words)
  mistake.assert_nothing_changed()
  assert not os.path.exists(mistake.target)


@pytest.mark.parametrize('route,words', [
    ('/not-gzip.tar.gz', ['not a readable gzip tar file']),
    ('/no-batches.tar.gz', ['holds no cifar-10-batches-bin/'])])
def test_unusable_tarball_leaves_nothing(tmp_path, served, route, words):
  # The scripts only accept the official tarball's MD5, which hides these
  # cases behind the checksum check; the library takes the expected MD5.
  body = served.routes[route].body
  target = tmp_path / 'cifar10_data'
  target.mkdir()
  (target / 'README.txt').write_text(u'kept\n')
  before = snapshot(target)
  with pytest.raises(errors.DownloadError) as raised:
    cifar10.maybe_download_and_extract(str(target), served.url(route),
                                       expected_md5=fakes.md5(body))
  message = str(raised.value)
  assert '\n' not in message
  for word in words + [str(target), served.url(route), 'by hand']:
    assert word in message
  assert_unchanged(before, snapshot(target))


# ---------------------------------------------------------------------------
# Directories that cannot be written


def _unwritable_case(batch, flag, directory):
  script = {'train_dir': 'cifar10_train.py', 'eval_dir': 'cifar10_eval.py'}[
      flag]
  return Case([script, '--data_dir', batch.data] +
              dirs_for(script, batch.untouched, batch.eval_dir()) +
              ['--' + flag, directory], [directory, batch.data,
                                         batch.untouched],
              directory=directory)


def _file_in_the_way_case(batch, flag):
  in_the_way = batch.fresh_path('a-file')
  with open(in_the_way, 'w') as f:
    f.write('not a directory\n')
  return _unwritable_case(batch, flag, in_the_way)


@arranged_by(_file_in_the_way_case)
@pytest.mark.parametrize('flag', ['train_dir', 'eval_dir'])
def test_directory_with_a_file_in_the_way(mistake, flag):
  mistake.error_line('--%s=%s' % (flag, mistake.directory))
  mistake.assert_nothing_changed()


def _locked_case(batch, flag):
  locked, how = batch.locked()
  if not how:
    return ('running as root, and this file system or container refuses '
            'chattr +i: no directory here is unwritable for root')
  return _unwritable_case(batch, flag, locked)


@arranged_by(_locked_case)
@pytest.mark.parametrize('flag', ['train_dir', 'eval_dir'])
def test_directory_without_write_permission(mistake, flag):
  mistake.error_line('--%s=%s' % (flag, mistake.directory), 'not writable')
  mistake.assert_nothing_changed()


# ---------------------------------------------------------------------------
# Checkpoints


def _other_model_case(batch, change, shape, **_):
  """An eval of a checkpoint (step 40) whose variable change is missing
  (shape None) or has another shape."""
  shapes = fakes.model_shapes(moving_averages=True)
  for name in (change, change + fakes.SHADOW):
    if shape is None:
      del shapes[name]
    else:
      shapes[name] = shape
  ckpt_dir = batch.fresh_path('other-model')
  tensors = fakes.zeros(shapes)
  tensors['global_step'] = np.int64(40)
  checkpoint = fakes.write_checkpoint(
      os.path.join(ckpt_dir, 'model.ckpt-40'), tensors)
  eval_dir = batch.eval_dir()
  return Case(['cifar10_eval.py', '--data_dir', batch.data,
               '--checkpoint_dir', ckpt_dir, '--eval_dir', eval_dir,
               '--batch_size', BATCH, '--run_once'], [ckpt_dir, eval_dir],
              eval_dir=eval_dir, checkpoint=checkpoint)


@arranged_by(_other_model_case)
@pytest.mark.parametrize('change,shape,words', [
    pytest.param('local4/weights', None, ['has no variable', 'local4/weights'],
                 id='missing'),
    pytest.param('local3/weights', [2304, 100],
                 ['local3/weights', '[2304, 100]', '[2304, 384]'],
                 id='misshaped')])
def test_checkpoint_of_another_model(mistake, change, shape, words):
  mistake.error_line(mistake.checkpoint, *words)
  mistake.assert_nothing_changed()


def _corrupt_case(batch, script):
  """A copy of a trained directory whose latest checkpoint is cut in half."""
  corrupt = batch.fresh_path('corrupt')
  checkpoint = fakes.copy_train_dir(batch.trained, corrupt)
  fakes.truncate_data_file(checkpoint)
  if script == 'train':
    return Case(['cifar10_train.py', '--data_dir', batch.data, '--train_dir',
                 corrupt, '--batch_size', BATCH, '--max_steps', '5'],
                [corrupt, batch.data], checkpoint=checkpoint)
  eval_dir = batch.eval_dir()
  return Case(['cifar10_eval.py', '--data_dir', batch.data,
               '--checkpoint_dir', corrupt, '--eval_dir', eval_dir,
               '--batch_size', BATCH, '--run_once'],
              [corrupt, batch.data, eval_dir], eval_dir=eval_dir,
              checkpoint=checkpoint)


@arranged_by(_corrupt_case, script='train')
def test_trainer_refuses_a_corrupt_checkpoint(mistake):
  mistake.error_line(mistake.checkpoint, 'unreadable', 'refusing')
  mistake.assert_nothing_changed()


@arranged_by(_corrupt_case, script='eval')
def test_run_once_on_a_corrupt_checkpoint(mistake):
  mistake.error_line(mistake.checkpoint, 'unreadable')
  mistake.assert_nothing_changed()
