"""How the tests run the repository's scripts: as a user would, but cheaply.

Each run is a process of its own, with the script's argv, environment,
working directory (the repository), stdout, stderr and exit status. Starting
Python and importing TensorFlow takes 1-3 s, longer than most of these runs
themselves; so by default the process is forked from a "zygote" (one per
test process, started on first use) that has already imported what every
script imports first (cli, then cifar10). The child executes the script as
`__main__` and ends as the interpreter would: non-daemon threads joined,
atexit handlers run. fresh=True, or an environment variable that TensorFlow
reads while it is imported, starts a new interpreter instead;
test_user_errors.test_forked_case_matches_plain_subprocess checks
that both give the same.
"""
import atexit
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Read by TensorFlow or Python at start-up: a fork would not see them.
START_UP_VARIABLES = ('TF_CPP_MIN_LOG_LEVEL', 'TF_CPP_MIN_VLOG_LEVEL',
                      'TF_ENABLE_ONEDNN_OPTS', 'CUDA_VISIBLE_DEVICES',
                      'PYTHONPATH', 'PYTHONHASHSEED', 'PYTHONWARNINGS')

_ZYGOTE = r'''
import atexit, json, os, runpy, signal, sys, threading, traceback
sys.path.insert(0, os.getcwd())
from cifar10lib.cli import cli
from cifar10lib.training import cifar10  # the costly TensorFlow import, done once for every run


def run(argv, env, prefix):
  signal.pthread_sigmask(signal.SIG_SETMASK, [])
  os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
  for fd, suffix in ((1, '.out'), (2, '.err')):
    os.dup2(os.open(prefix + suffix, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                    0o644), fd)
  os.environ.clear()
  os.environ.update(env)
  sys.argv = list(argv)
  code = 0
  try:
    runpy.run_path(argv[0], run_name='__main__')
  except SystemExit as e:
    if isinstance(e.code, str):
      sys.stderr.write(e.code + '\n')
    code = e.code if isinstance(e.code, int) else int(e.code is not None)
  except BaseException:
    traceback.print_exc()  # what the interpreter would print
    code = 1
  try:  # what the interpreter does on its way out
    threading._shutdown()
    atexit._run_exitfuncs()
  except BaseException:
    traceback.print_exc()
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(code)


for line in sys.stdin:
  pid = os.fork()
  if pid == 0:
    run(**json.loads(line))
  print(pid, flush=True)
  _, status = os.waitpid(pid, 0)
  print(os.WEXITSTATUS(status) if os.WIFEXITED(status)
        else -os.WTERMSIG(status), flush=True)
'''


class _Zygote(object):
  """A process that has imported TensorFlow and forks one child per run."""

  def __init__(self):
    self._dir = tempfile.mkdtemp(prefix='script-runs-')
    self._log = open(os.path.join(self._dir, 'zygote.log'), 'w')
    self._proc = subprocess.Popen(
        [sys.executable, '-c', _ZYGOTE], cwd=REPO, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=self._log, bufsize=0,
        preexec_fn=as_a_terminal_starts_it)
    self._buffer = b''
    self._runs = 0
    self.lock = threading.Lock()

  def _line(self, timeout):
    while b'\n' not in self._buffer:
      fd = self._proc.stdout.fileno()
      if not select.select([fd], [], [], timeout)[0]:
        return None
      chunk = os.read(fd, 4096)
      if not chunk:
        self._log.flush()
        with open(self._log.name) as f:
          raise RuntimeError('the zygote ended:\n' + f.read()[-3000:])
      self._buffer += chunk
    line, self._buffer = self._buffer.split(b'\n', 1)
    return int(line)

  def run(self, argv, env, timeout):
    """(exit status, stdout, stderr); TimeoutExpired after timeout s."""
    self._runs += 1
    prefix = os.path.join(self._dir, 'run-%d' % self._runs)
    request = dict(argv=list(argv), env=env, prefix=prefix)
    self._proc.stdin.write((json.dumps(request) + '\n').encode())
    pid = self._line(None)
    status = self._line(timeout)
    if status is None:
      os.kill(pid, signal.SIGKILL)
      self._line(None)
    outputs = []
    for suffix in ('.out', '.err'):
      with open(prefix + suffix, errors='replace') as f:
        outputs.append(f.read())
      os.remove(prefix + suffix)
    if status is None:
      raise subprocess.TimeoutExpired(argv, timeout, *outputs)
    return status, outputs[0], outputs[1]

  def close(self):
    self._proc.stdin.close()
    self._proc.wait()
    self._log.close()
    shutil.rmtree(self._dir, ignore_errors=True)


_zygote = None


def _the_zygote():
  global _zygote
  if _zygote is None:
    _zygote = _Zygote()
    atexit.register(_zygote.close)
  return _zygote


def as_a_terminal_starts_it():
  """preexec_fn for a script started as its own process: Ctrl-C and
  SIGTERM as a user's shell leaves them, whatever this test process has
  done with its own (a signal ignored or blocked here would be inherited)."""
  for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(sig, signal.SIG_DFL)
  signal.pthread_sigmask(signal.SIG_SETMASK, [])


def kill_session(proc):
  """SIGKILL to the session of proc, a Popen started with
  start_new_session=True (its children share it), if proc still runs; then
  waits for proc."""
  if proc.poll() is None:
    try:
      os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
      pass
  proc.wait()


def run_script(script, *args, timeout=240, env=None, check=True, fresh=False):
  """Runs one of the repository's scripts as a user would; returns result.

  result is a subprocess.CompletedProcess with text stdout and stderr;
  check fails the test on a non-zero exit status.
  """
  full_env = dict(os.environ)
  full_env.update(env or {})
  argv = [script] + [str(arg) for arg in args]
  zygote = None
  if not fresh and not set(env or {}) & set(START_UP_VARIABLES):
    zygote = _the_zygote()
    if not zygote.lock.acquire(blocking=False):
      zygote = None  # another thread's run is in it
  if zygote is None:
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, script)] + argv[1:],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        universal_newlines=True, timeout=timeout, env=full_env, cwd=REPO,
        preexec_fn=as_a_terminal_starts_it)
  else:
    try:
      result = subprocess.CompletedProcess(
          argv, *zygote.run(argv, full_env, timeout))
    finally:
      zygote.lock.release()
  if check and result.returncode != 0:
    raise AssertionError('%s %s exited %d\nstdout:\n%s\nstderr:\n%s' % (
        script, ' '.join(argv[1:]), result.returncode, result.stdout,
        result.stderr))
  return result


def run_scripts(argvs):
  """run_script(*argv, check=False) of each argv ([script, flags...])."""
  return [run_script(*argv, check=False) for argv in argvs]
