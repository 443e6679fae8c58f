"""Shared fixtures, and helpers that run the repository's scripts and judge
what they did (the one-line error contract, the disk left as it was).

Every test makes its own data (the fakes package), a few hundred records, so the
suite needs neither the network nor the real 170 MB download. Whatever a
test writes goes under pytest's temporary directory: a session-wide check
fails the run if the scripts' default directories under /tmp gained anything.
"""
import hashlib
import os
import re
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import fakes  # noqa: E402  (after the repository is on the path)
from script_runs import (as_a_terminal_starts_it, kill_session,  # noqa: E402,F401
                         run_script, run_scripts)

# The scripts' defaults for --train_dir/--checkpoint_dir, --eval_dir,
# --data_dir and --export_dir: no test may write there.
DEFAULT_DIRS = ['/tmp/cifar10_train', '/tmp/cifar10_eval', '/tmp/cifar10_data',
                '/tmp/cifar10_export']
# The tutorial's progress line, exactly.
LOG_LINE = re.compile(
    r'^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: step (\d+), loss = \d+\.\d\d '
    r'\(\d+\.\d examples/sec; \d+\.\d{3} sec/batch\)$')
WAIT_SECS = 120


def _entries_under(paths):
  """Every path at or below the given ones that exists."""
  found = set()
  for root in paths:
    if os.path.lexists(root):
      found.add(root)
    for dirpath, dirnames, filenames in os.walk(root):
      found.update(os.path.join(dirpath, n) for n in dirnames + filenames)
  return found


@pytest.fixture(scope='session', autouse=True)
def nothing_written_to_default_dirs():
  """Fails the run if a test left anything new in the scripts' /tmp defaults."""
  before = _entries_under(DEFAULT_DIRS)
  yield
  added = sorted(_entries_under(DEFAULT_DIRS) - before)
  assert not added, (
      'the tests wrote to the scripts\' default directories (give the script '
      '--train_dir/--eval_dir/--data_dir under tmp_path): %s' % added[:20])


@pytest.fixture
def data_dir(tmp_path):
  """A small data set: 5 x 60 training records, 100 test records."""
  path = tmp_path / 'data'
  fakes.write_dataset(path)
  return str(path)


@pytest.fixture(scope='session')
def readonly_data_dir(tmp_path_factory):
  """data_dir's data set, shared by the whole session: copy it to change it."""
  path = tmp_path_factory.mktemp('readonly_data')
  fakes.write_dataset(path)
  return str(path)


def train_args(data_dir, train_dir, *extra):
  """Flags of a small training run that logs every step."""
  return ('--data_dir', str(data_dir), '--train_dir', str(train_dir),
          '--batch_size', '16', '--log_frequency', '1',
          '--save_summaries_steps', '1000') + extra


@pytest.fixture(scope='session')
def trained_two_steps(tmp_path_factory, readonly_data_dir):
  """A directory cifar10_train.py trained 2 steps: model.ckpt-0 and -2.

  Shared by the whole session: copy it (fakes.copy_train_dir) to change it.
  """
  path = tmp_path_factory.mktemp('trained_two_steps')
  run_script('cifar10_train.py',
             *train_args(readonly_data_dir, path, '--max_steps', '2'))
  assert fakes.latest_step(path)[1] == 2
  return str(path)


@pytest.fixture(scope='module')
def download_server():
  """fakes.DownloadServer, for the tests of one module."""
  with fakes.DownloadServer() as server:
    yield server


def logged_steps(stdout):
  """The steps of the tutorial's log lines; fails on a malformed one."""
  steps = []
  for line in stdout.splitlines():
    if ': step ' in line:
      match = LOG_LINE.match(line)
      assert match, 'not in the tutorial format: %r' % line
      steps.append(int(match.group(1)))
  return steps


def numpy_eval_images(pixels):
  """What evaluation should make of [n, 32, 32, 3] pixels, computed in numpy:
  the central 24x24 crop, standardized per image."""
  crop = pixels[:, 4:28, 4:28, :].astype(np.float64)
  flat = crop.reshape(len(crop), -1)
  mean = flat.mean(axis=1)
  std = np.maximum(flat.std(axis=1), 1.0 / np.sqrt(flat.shape[1]))
  return (crop - mean[:, None, None, None]) / std[:, None, None, None]


def run_pipeline(fetches, batches=None):
  """Runs the input queues behind fetches in a new session of this graph.

  Returns the results of up to `batches` runs (all of them when None),
  stopping early at the end of the input (num_epochs=1 pipelines).
  """
  from cifar10lib.base.compat import tf
  results = []
  with tf.Session() as sess:
    sess.run([tf.global_variables_initializer(),
              tf.local_variables_initializer()])
    coord = tf.train.Coordinator()
    threads = tf.train.start_queue_runners(sess=sess, coord=coord)
    try:
      while batches is None or len(results) < batches:
        results.append(sess.run(fetches))
    except tf.errors.OutOfRangeError:
      pass
    finally:
      coord.request_stop()
      coord.join(threads, stop_grace_period_secs=10)
  return results


def snapshot(*roots):
  """{path: state} of every entry under roots (files: size, mtime, md5)."""
  state = {}
  for root in roots:
    root = str(root)
    if not os.path.lexists(root):
      state[root] = None
      continue
    if os.path.isfile(root):
      state[root] = _file_state(root)
      continue
    for dirpath, dirnames, filenames in os.walk(root):
      state[dirpath] = 'dir'
      for name in filenames:
        path = os.path.join(dirpath, name)
        state[path] = _file_state(path)
  return state


def _file_state(path):
  st = os.stat(path)
  with open(path, 'rb') as f:
    digest = hashlib.md5(f.read()).hexdigest()
  return (st.st_size, st.st_mtime_ns, digest)


def assert_unchanged(before, after, events_may_appear_in=None):
  """Nothing that was on disk changed, and nothing new appeared.

  The evaluator opens its event file before it looks at a checkpoint, so an
  events.out.tfevents file may appear in events_may_appear_in.
  """
  added = set(after) - set(before)
  if events_may_appear_in:
    added = {p for p in added
             if not (os.path.dirname(p) == events_may_appear_in and
                     'events.out.tfevents' in p)}
  assert not added, 'new on disk: %s' % sorted(added)
  assert {p: after.get(p) for p in before} == before


def one_error_line(result, script, *words, status=None):
  """Asserts the one-line error contract (exit status `status` if given,
  else any failure); returns the line."""
  if status is None:
    assert result.returncode != 0, result.stdout + result.stderr
  else:
    assert result.returncode == status, result.stdout + result.stderr
  assert 'Traceback' not in result.stderr, result.stderr
  lines = [l for l in result.stderr.splitlines() if l.strip()]
  assert len(lines) == 1, result.stderr
  line = lines[0]
  assert line.startswith('%s: error: ' % script), line
  for word in words:
    assert str(word) in line, (word, line)
  return line

def grey_png(tmp_path):
  """A 32x32 grey PNG in tmp_path, for the classifier."""
  return fakes.write_png(tmp_path / 'img.png',
                         np.full([32, 32, 3], 100, np.uint8))


def evaluate(data, checkpoint_dir, tmp_path, *args, check=True):
  """cifar10_eval.py --run_once on 40 test examples."""
  return run_script('cifar10_eval.py', '--data_dir', data, '--checkpoint_dir',
                    checkpoint_dir, '--eval_dir', str(tmp_path / 'eval'),
                    '--run_once', '--num_examples', '40', '--batch_size', '20',
                    *args, check=check)


def classify(data, checkpoint_dir, img, *args, check=True):
  return run_script('cifar10_classify.py', '--data_dir', data,
                    '--checkpoint_dir', checkpoint_dir, *(list(args) + [img]),
                    check=check)


class Proc(object):
  """A script running in the background, its output collected line by line."""

  def __init__(self, script, *args):
    env = dict(os.environ)
    env.pop('TF_CONFIG', None)   # a cluster of the caller's is not the test's
    # Its own session, as a shell's job: kill() ends it and its children.
    self.popen = subprocess.Popen(
        [sys.executable, os.path.join(REPO, script)] + list(args),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        universal_newlines=True, cwd=REPO, start_new_session=True,
        preexec_fn=as_a_terminal_starts_it)
    self.out, self.err = [], []
    self._readers = [threading.Thread(target=self._read, args=(s, lines))
                     for s, lines in ((self.popen.stdout, self.out),
                                      (self.popen.stderr, self.err))]
    for reader in self._readers:
      reader.daemon = True
      reader.start()

  @staticmethod
  def _read(stream, lines):
    for line in stream:
      lines.append(line)

  @property
  def stdout(self):
    return ''.join(self.out)

  @property
  def stderr(self):
    return ''.join(self.err)

  @property
  def lines(self):
    """stdout's lines so far, without their newlines."""
    return [line.rstrip('\n') for line in self.out]

  def wait_for(self, predicate, what, timeout=WAIT_SECS):
    """Polls predicate() until true; fails, killing the script, on timeout."""
    deadline = time.time() + timeout
    while not predicate():
      if self.popen.poll() is not None or time.time() > deadline:
        self.popen.kill()
        self.finish()
        pytest.fail('gave up waiting for %s\nstdout:\n%s\nstderr:\n%s'
                    % (what, self.stdout, self.stderr))
      time.sleep(0.02)

  def finish(self, timeout=WAIT_SECS):
    """Waits for the script to exit (killing it after timeout); returns rc."""
    try:
      rc = self.popen.wait(timeout)
    except subprocess.TimeoutExpired:
      self.popen.kill()
      self.popen.wait()
      for reader in self._readers:
        reader.join(10)
      raise AssertionError('%s still running %d s after it was told to stop '
                           '(killed)\nstdout:\n%s\nstderr:\n%s' % (
                               ' '.join(self.popen.args[1:2]), timeout,
                               self.stdout, self.stderr))
    for reader in self._readers:
      reader.join(10)
    return rc

  def kill(self):
    """SIGKILL to the script's whole session, if it still runs."""
    kill_session(self.popen)
    self.finish()


# Drops root's power to read any file whatever its mode, for the cases of an
# unreadable file.
SETPRIV = ['setpriv', '--inh-caps=-dac_override,-dac_read_search',
           '--bounding-set=-dac_override,-dac_read_search']


def can_drop_dac_override(tmp_path):
  probe = tmp_path / 'probe'
  probe.write_text('x')
  os.chmod(str(probe), 0)
  try:
    result = subprocess.run(SETPRIV + ['cat', str(probe)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
  except OSError:
    return False
  finally:
    os.chmod(str(probe), 0o644)
    probe.unlink()
  return result.returncode != 0


def run_unprivileged(tmp_path, script, *args):
  """Runs script without the power to read files whatever their mode."""
  if os.geteuid() == 0 and not can_drop_dac_override(tmp_path):
    pytest.skip('running as root and setpriv cannot drop CAP_DAC_OVERRIDE')
  prefix = SETPRIV if os.geteuid() == 0 else []
  return subprocess.run(
      prefix + [sys.executable, os.path.join(REPO, script)] +
      [str(a) for a in args], cwd=REPO, stdout=subprocess.PIPE,
      stderr=subprocess.PIPE, universal_newlines=True, timeout=180)
