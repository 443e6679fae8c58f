"""Signals and dry input: what stops a script that is waiting on something.

Each test runs a script as a user would, as a subprocess, and signals it
at the moment that matters: during TensorFlow's import, during a download
served slowly from 127.0.0.1, and while a trainer's step waits on input
that has run dry.
"""
import os
import signal
import subprocess
import sys
import threading
import time

from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer

import pytest

from script_runs import as_a_terminal_starts_it
from conftest import REPO
from fakes import write_dataset

TRAIN_ARGS = ['--batch_size', '16', '--min_fraction_of_examples_in_queue',
              '0.05', '--max_steps', '100000', '--log_frequency', '10']
INTERRUPTED = 130      # the shell's status for SIGINT
WAIT_SECS = 120        # for any one thing a test waits on


def _start(script, *args):
  return subprocess.Popen(
      [sys.executable, os.path.join(REPO, script)] + list(args),
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
      cwd=REPO, preexec_fn=as_a_terminal_starts_it)


def _wait_until(predicate, what):
  deadline = time.time() + WAIT_SECS
  while not predicate():
    if time.time() > deadline:
      raise AssertionError('timed out waiting for ' + what)
    time.sleep(0.01)


class _LineReader(object):
  """Collects a process's stdout lines in a thread, so a test can wait on one."""

  def __init__(self, stream):
    self.lines = []
    self._thread = threading.Thread(target=self._read, args=(stream,))
    self._thread.daemon = True
    self._thread.start()

  def _read(self, stream):
    for line in stream:
      self.lines.append(line)

  def has(self, text):
    return any(text in line for line in self.lines)

  def join(self):
    self._thread.join(WAIT_SECS)
    return ''.join(self.lines)


def _tensorflow_loading(pid):
  try:
    with open('/proc/%d/maps' % pid) as f:
      return 'tensorflow' in f.read()
  except IOError:
    return False


def test_sigint_while_tensorflow_loads_exits_quietly(tmp_path):
  proc = _start('cifar10_train.py', '--data_dir', str(tmp_path / 'data'),
                '--train_dir', str(tmp_path / 'train'))
  # TensorFlow's libraries mapped: the import is under way, before any
  # flag is parsed.
  _wait_until(lambda: _tensorflow_loading(proc.pid) or proc.poll() is not None,
              'TensorFlow to load')
  proc.send_signal(signal.SIGINT)
  out, err = proc.communicate(timeout=WAIT_SECS)
  assert proc.returncode == INTERRUPTED, (out, err)
  assert 'Traceback' not in err and len(err.splitlines()) <= 1, err
  assert not os.listdir(str(tmp_path))


class _SlowHandler(BaseHTTPRequestHandler):
  """Announces a large body and sends it one small piece at a time."""

  def do_GET(self):
    self.send_response(200)
    self.send_header('Content-Length', str(10 ** 7))
    self.end_headers()
    try:
      while not self.server.stopping:
        self.wfile.write(b'x' * 100)
        self.wfile.flush()
        time.sleep(0.05)
    except (IOError, OSError):
      pass  # the client went away

  def log_message(self, *args):
    pass


@pytest.fixture
def slow_server():
  server = ThreadingHTTPServer(('127.0.0.1', 0), _SlowHandler)
  server.daemon_threads = True
  server.stopping = False
  thread = threading.Thread(target=server.serve_forever)
  thread.daemon = True
  thread.start()
  yield 'http://127.0.0.1:%d/cifar-10-binary.tar.gz' % server.server_port
  server.stopping = True
  server.shutdown()
  server.server_close()


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM,
                                 signal.SIGHUP])
def test_stop_signal_during_download_leaves_nothing(tmp_path, slow_server,
                                                    sig):
  data_dir = tmp_path / 'new' / 'data'
  proc = _start('cifar10_train.py', '--data_dir', str(data_dir),
                '--train_dir', str(tmp_path / 'train'),
                '--data_url', slow_server)

  def downloading():
    return data_dir.is_dir() and any(
        name.endswith('.part') and os.path.getsize(str(data_dir / name))
        for name in os.listdir(str(data_dir)))
  _wait_until(lambda: downloading() or proc.poll() is not None,
              'the download to start')
  started = time.time()
  proc.send_signal(sig)
  out, err = proc.communicate(timeout=WAIT_SECS)
  assert time.time() - started < 30, 'the download went on after %s' % sig
  assert proc.returncode == 128 + sig, (out, err)
  lines = [line for line in err.splitlines() if not line.startswith('>>')]
  assert lines == ['cifar10_train.py: error: interrupted (%s); stopped'
                   % signal.Signals(sig).name], err
  # The wait said what it waited for, before the server answered at all.
  assert out.startswith('Downloading %s into %s (given up after 3600 s: '
                        '--download_deadline_secs)\n' % (slow_server,
                                                         data_dir)), out
  # The partial file, the directories it made: all gone.
  assert not (tmp_path / 'new').exists()
  assert not (tmp_path / 'train').exists()


def _start_training(tmp_path, *extra):
  data_dir = tmp_path / 'data'
  write_dataset(data_dir)
  train_dir = tmp_path / 'train'
  proc = _start('cifar10_train.py', '--data_dir', str(data_dir),
                '--train_dir', str(train_dir), *(TRAIN_ARGS + list(extra)))
  return proc, _LineReader(proc.stdout), data_dir, train_dir


def _run_dry(data_dir):
  for name in os.listdir(str(data_dir / 'cifar-10-batches-bin')):
    if name.startswith('data_batch_'):
      open(str(data_dir / 'cifar-10-batches-bin' / name), 'w').close()


def _checkpoint_step(train_dir):
  with open(str(train_dir / 'checkpoint')) as f:
    first = f.readline()
  return int(first.split('-')[-1].strip().strip('"'))


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_a_trainer_whose_input_ran_dry(tmp_path, sig):
  proc, reader, data_dir, train_dir = _start_training(tmp_path)
  _wait_until(lambda: reader.has('step 20') or proc.poll() is not None,
              'step 20')
  _run_dry(data_dir)
  # The queue holds a little more than a batch: the step then waits.
  time.sleep(5)
  assert proc.poll() is None
  proc.send_signal(sig)
  err = proc.stderr.read()
  proc.wait(timeout=WAIT_SECS)
  out = reader.join()
  # A shell's status for a process the signal ended: not a finished run.
  assert proc.returncode == 128 + sig, (out, err)
  name = signal.Signals(sig).name
  stopped = [line for line in out.splitlines() if line.startswith('Stopped')]
  assert len(stopped) == 1 and ('Stopped by %s at step' % name) in stopped[0]
  step = int(stopped[0].split('at step ')[1].split(';')[0])
  assert step >= 20 and _checkpoint_step(train_dir) == step
  assert 'Traceback' not in err


def test_dry_input_ends_after_input_timeout(tmp_path):
  proc, reader, data_dir, train_dir = _start_training(
      tmp_path, '--input_timeout_secs', '3')
  _wait_until(lambda: reader.has('step 20') or proc.poll() is not None,
              'step 20')
  _run_dry(data_dir)
  err = proc.stderr.read()
  proc.wait(timeout=WAIT_SECS)
  out = reader.join()
  assert proc.returncode == 1, (out, err)
  assert len(err.splitlines()) == 1, err
  assert err.startswith('cifar10_train.py: error: no training step finished '
                        'within 3 s (--input_timeout_secs)')
  assert 'the input produced nothing' in err and str(train_dir) in err
  # The session was sound: it saved the step it reached.
  step = int(err.split('checkpoint saved at step ')[1].split()[0])
  assert step >= 20 and _checkpoint_step(train_dir) == step


def test_sighup_stops_after_the_step_with_a_checkpoint(tmp_path):
  proc, reader, _, train_dir = _start_training(tmp_path)
  _wait_until(lambda: reader.has('step 20') or proc.poll() is not None,
              'step 20')
  proc.send_signal(signal.SIGHUP)
  err = proc.stderr.read()
  proc.wait(timeout=WAIT_SECS)
  out = reader.join()
  assert proc.returncode == 128 + signal.SIGHUP, (out, err)
  stopped = [line for line in out.splitlines() if line.startswith('Stopped')]
  assert len(stopped) == 1 and 'Stopped by SIGHUP at step' in stopped[0]
  step = int(stopped[0].split('at step ')[1].split(';')[0])
  assert step >= 20 and _checkpoint_step(train_dir) == step
