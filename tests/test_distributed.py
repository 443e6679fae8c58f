"""Tests of cifar10_dist_train.py: real ps and worker processes on 127.0.0.1.

The cluster tests start a parameter server and workers as separate processes
on free loopback ports, and kill every one of them at the end, whatever
happened (the `cluster` fixture).
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from script_runs import as_a_terminal_starts_it, kill_session
from conftest import REPO, run_script
import fakes

SCRIPT = 'cifar10_dist_train.py'
PROCESS_TIMEOUT_SECS = 240   # a bound against hangs, not a timing check
ASYNC_STEPS = 40
SYNC_STEPS = 12
LOG_FREQUENCY = 2


class Cluster(object):
  """The processes of one test, each in its own process group."""

  def __init__(self, log_dir):
    self._log_dir = log_dir
    self._procs = {}

  def start(self, name, args, env=None):
    full_env = dict(os.environ)
    full_env.pop('TF_CONFIG', None)
    full_env.update(env or {})
    log = open(os.path.join(self._log_dir, name + '.log'), 'w')
    self._procs[name] = subprocess.Popen(
        [sys.executable, os.path.join(REPO, SCRIPT)] + args, cwd=REPO,
        env=full_env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True, preexec_fn=as_a_terminal_starts_it)
    log.close()

  def wait_listening(self, name, port):
    """Waits until name accepts connections on port: a worker with a short
    --ps_timeout_secs must not start while a loaded machine still imports
    TensorFlow in the ps."""
    deadline = time.time() + PROCESS_TIMEOUT_SECS
    while True:
      assert self._procs[name].poll() is None, self.output(name)
      try:
        socket.create_connection(('127.0.0.1', port), timeout=1).close()
        return
      except OSError:
        assert time.time() < deadline, self.output(name)
        time.sleep(0.2)

  def output(self, name):
    with open(os.path.join(self._log_dir, name + '.log')) as f:
      return f.read()

  def finish(self, name, expect_rc=0):
    """Waits for name to exit; returns its output after checking its status."""
    rc = self._procs[name].wait(timeout=PROCESS_TIMEOUT_SECS)
    out = self.output(name)
    assert rc == expect_rc, '%s exited %d:\n%s' % (name, rc, out)
    assert 'Traceback' not in out, out
    return out

  def stop(self, name, sig=signal.SIGTERM):
    self._procs[name].send_signal(sig)

  def kill(self, name):
    """SIGKILL to name's process group; waits for it to end."""
    kill_session(self._procs[name])

  def kill_all(self):
    for proc in self._procs.values():
      kill_session(proc)


@pytest.fixture
def cluster(tmp_path):
  processes = Cluster(str(tmp_path))
  try:
    yield processes
  finally:
    processes.kill_all()


def _hosts(ps_port, worker_ports):
  return ['127.0.0.1:%d' % ps_port], ['127.0.0.1:%d' % p for p in worker_ports]


def _checkpoint_step(train_dir):
  """The step in the latest checkpoint's name, which is relative."""
  return int(re.match(r'model\.ckpt-(\d+)$',
                      fakes.recorded_checkpoint(train_dir)).group(1))


def _steps_run(out, task):
  match = re.search(r'^worker %d: ran (\d+) steps \((\d+) examples\); last '
                    r'global step (\d+)$' % task, out, re.M)
  assert match, out
  return int(match.group(1))


TUTORIAL_LINE = re.compile(
    r'^\S+ \S+: step \d+, loss = \d+\.\d\d \(\d+\.\d examples/sec; '
    r'\d+\.\d\d\d sec/batch\)$', re.M)
CLUSTER_LINE = re.compile(
    r'^\S+ \S+: cluster: global step \d+, \d+\.\d examples/sec in total over '
    r'2 workers$', re.M)


def test_async_cluster_trains_and_its_checkpoint_evaluates(cluster, data_dir,
                                                           tmp_path):
  ps_port, w0_port, w1_port = fakes.free_ports(3)
  ps_hosts, worker_hosts = _hosts(ps_port, [w0_port, w1_port])
  hosts = ['--ps_hosts=' + ','.join(ps_hosts),
           '--worker_hosts=' + ','.join(worker_hosts)]
  train_dir = str(tmp_path / 'train')
  common = hosts + ['--data_dir', data_dir, '--train_dir', train_dir,
                    '--batch_size=16', '--max_steps=%d' % ASYNC_STEPS,
                    '--log_frequency=%d' % LOG_FREQUENCY]
  cluster.start('ps', hosts + ['--job_name=ps', '--task_index=0'])
  cluster.start('worker1', common + ['--job_name=worker', '--task_index=1'])
  cluster.start('worker0', common + ['--job_name=worker', '--task_index=0'])
  out0 = cluster.finish('worker0')
  out1 = cluster.finish('worker1')
  # The chief's first step waited for worker 1 to join.
  assert 'All 2 workers have joined' in out0
  runs = [_steps_run(out0, 0), _steps_run(out1, 1)]
  assert min(runs) >= 1, (out0, out1)
  for out, n in zip((out0, out1), runs):
    # Each worker paces its tutorial lines by its own steps.
    assert len(TUTORIAL_LINE.findall(out)) == n // LOG_FREQUENCY, out
  assert len(CLUSTER_LINE.findall(out0)) == runs[0] // LOG_FREQUENCY, out0
  assert 'cluster:' not in out1
  # Each asynchronous step is one update of global_step: the chief saved at
  # the end, at or past --max_steps, and no update came from elsewhere.
  step = _checkpoint_step(train_dir)
  assert ASYNC_STEPS <= step <= sum(runs)
  evaluated = run_script('cifar10_eval.py', '--run_once',
                         '--checkpoint_dir', train_dir, '--data_dir', data_dir,
                         '--eval_dir', str(tmp_path / 'eval'),
                         '--batch_size=50')
  # The chief names the file after the step it read just before saving; the
  # other worker may update the variables in between, so the global step
  # the evaluator reads from the checkpoint is that one or a later one.
  match = re.search(r'precision @ 1 = \d\.\d{3} \(\d+/100 correct, global step '
                    r'(\d+), model\.ckpt-%d\)' % step, evaluated.stdout)
  assert match, evaluated.stdout
  assert step <= int(match.group(1)) <= sum(runs)
  cluster.stop('ps')
  assert 'ps 0: stopped by SIGTERM' in cluster.finish('ps')


def test_sync_cluster_from_tf_config_aggregates_one_batch_per_worker(
    cluster, data_dir, tmp_path):
  """Every update holds exactly one gradient of each worker.

  SyncReplicasOptimizer applies an update once it holds replicas_to_aggregate
  (= 2) gradients, and drops gradients computed at an older global step than
  the one being aggregated. Each worker reports the global step at which it
  computed each gradient it sent, and the global step each update that
  released it had reached. A gradient computed at step k can only go into
  update k+1 (step k+1 does not exist yet); so when each worker sent exactly
  one gradient at each of steps 0..N-1 and saw updates 1..N, each of the N
  updates held one gradient from each of the two workers, and the final
  global step (in the checkpoint) is the number of updates.
  """
  ps_port, w0_port, w1_port = fakes.free_ports(3)
  ps_hosts, worker_hosts = _hosts(ps_port, [w0_port, w1_port])
  cluster_spec = {'ps': ps_hosts, 'worker': worker_hosts}

  def tf_config(job, index):
    return {'TF_CONFIG': json.dumps({'cluster': cluster_spec,
                                     'task': {'type': job, 'index': index}})}

  train_dir = str(tmp_path / 'train')
  common = ['--data_dir', data_dir, '--train_dir', train_dir,
            '--batch_size=16', '--max_steps=%d' % SYNC_STEPS,
            '--log_frequency=%d' % LOG_FREQUENCY, '--sync_replicas']
  cluster.start('ps', [], env=tf_config('ps', 0))
  cluster.start('worker1', common, env=tf_config('worker', 1))
  cluster.start('worker0', common, env=tf_config('worker', 0))
  out0 = cluster.finish('worker0')
  out1 = cluster.finish('worker1')
  assert re.search(r'^worker 0 \(chief\): server at 127\.0\.0\.1:%d, '
                   r'synchronous updates$' % w0_port, out0, re.M), out0
  for task, out in enumerate((out0, out1)):
    assert ('worker %d: sent %d gradients, computed at global steps 0-%d; '
            'received %d updates, at global steps 1-%d'
            % (task, SYNC_STEPS, SYNC_STEPS - 1, SYNC_STEPS, SYNC_STEPS)
            in out), out
    assert _steps_run(out, task) == SYNC_STEPS
    assert len(TUTORIAL_LINE.findall(out)) == SYNC_STEPS // LOG_FREQUENCY
  assert _checkpoint_step(train_dir) == SYNC_STEPS


def test_worker_without_parameter_server_gives_up_with_one_line(data_dir,
                                                                tmp_path):
  ps_port, worker_port = fakes.free_ports(2)   # nothing listens on either
  result = run_script(
      SCRIPT, '--ps_hosts=127.0.0.1:%d' % ps_port,
      '--worker_hosts=127.0.0.1:%d' % worker_port, '--job_name=worker',
      '--task_index=0', '--ps_timeout_secs=3', '--data_dir', data_dir,
      '--train_dir', str(tmp_path / 'train'), check=False, timeout=120)
  assert result.returncode == 1, result.stderr
  assert result.stderr.splitlines() == [
      '%s: error: cannot reach parameter server ps 0 at 127.0.0.1:%d within '
      '3 s (--ps_timeout_secs): Connection refused' % (SCRIPT, ps_port)]
  # The wait said what it waits for, once.
  assert [l for l in result.stdout.splitlines()
          if not l.startswith('Options: ')] == [
      'Waiting up to 3 s (--ps_timeout_secs) for parameter server ps 0 at '
      '127.0.0.1:%d (Connection refused); Ctrl-C stops.' % ps_port]
  assert not os.path.exists(str(tmp_path / 'train'))


def test_sigterm_ends_the_wait_for_a_parameter_server(data_dir, tmp_path):
  ps_port, worker_port = fakes.free_ports(2)   # nothing listens on either
  proc = subprocess.Popen(
      [sys.executable, os.path.join(REPO, SCRIPT),
       '--ps_hosts=127.0.0.1:%d' % ps_port,
       '--worker_hosts=127.0.0.1:%d' % worker_port, '--job_name=worker',
       '--task_index=0', '--data_dir', data_dir, '--train_dir',
       str(tmp_path / 'train')], cwd=REPO, stdout=subprocess.PIPE,
      stderr=subprocess.PIPE, universal_newlines=True,
      preexec_fn=as_a_terminal_starts_it)
  try:
    line = proc.stdout.readline()
    if line.startswith('Options: '):  # the options given, first
      line = proc.stdout.readline()
    assert 'for parameter server ps 0' in line, line
    proc.send_signal(signal.SIGTERM)
    stopped = time.time()
    out, err = proc.communicate(timeout=PROCESS_TIMEOUT_SECS)
  finally:
    if proc.poll() is None:
      proc.kill()
  assert time.time() - stopped < 10
  assert proc.returncode == 128 + signal.SIGTERM, err
  assert err.splitlines() == ['%s: error: interrupted (SIGTERM); stopped'
                              % SCRIPT], err
  assert not os.path.exists(str(tmp_path / 'train'))


def test_worker_without_chief_gives_up_with_one_line(cluster, data_dir,
                                                    tmp_path):
  ps_port, w0_port, w1_port = fakes.free_ports(3)
  ps_hosts, worker_hosts = _hosts(ps_port, [w0_port, w1_port])
  hosts = ['--ps_hosts=' + ','.join(ps_hosts),
           '--worker_hosts=' + ','.join(worker_hosts)]
  cluster.start('ps', hosts + ['--job_name=ps'])
  cluster.start('worker1', hosts + [
      '--job_name=worker', '--task_index=1', '--worker_timeout_secs=3',
      '--data_dir', data_dir, '--train_dir', str(tmp_path / 'train')])
  out = cluster.finish('worker1', expect_rc=1)
  assert out.splitlines()[-1] == (
      '%s: error: the chief (worker 0 at 127.0.0.1:%d) did not initialise the '
      'model within 3 s (--worker_timeout_secs)' % (SCRIPT, w0_port)), out


def _checkpoint_files(train_dir):
  """{file name: MD5} of the checkpoints' variables in train_dir.

  (The saver writes a .meta file after the rest, so it may be unfinished.)
  """
  return {name: fakes.md5(open(os.path.join(train_dir, name), 'rb').read())
          for name in os.listdir(train_dir)
          if re.match(r'model\.ckpt-\d+\.(index|data-)', name)}


@pytest.mark.parametrize('stop', [None, signal.SIGINT])
def test_worker_whose_ps_dies_stops_in_one_line_and_resumes_later(
    cluster, data_dir, tmp_path, stop):
  """SIGKILL on the ps mid-training: the worker's step would wait forever.

  It ends with one line --ps_timeout_secs later, or at once on a stop
  signal, keeps every checkpoint as it was, and a restarted cluster resumes
  from the last one.
  """
  ps_port, w0_port = fakes.free_ports(2)
  hosts = ['--ps_hosts=127.0.0.1:%d' % ps_port,
           '--worker_hosts=127.0.0.1:%d' % w0_port]
  train_dir = str(tmp_path / 'train')
  worker = hosts + ['--job_name=worker', '--task_index=0',
                    '--data_dir', data_dir, '--train_dir', train_dir,
                    '--batch_size=16', '--save_checkpoint_steps=10',
                    '--log_frequency=10', '--ps_timeout_secs=%d' % (
                        60 if stop else 3)]
  cluster.start('ps', hosts + ['--job_name=ps'])
  cluster.wait_listening('ps', ps_port)
  cluster.start('worker0', worker + ['--max_steps=100000'])
  deadline = time.time() + PROCESS_TIMEOUT_SECS
  while not os.path.exists(os.path.join(train_dir, 'model.ckpt-20.index')):
    assert time.time() < deadline, cluster.output('worker0')
    time.sleep(0.2)
  saved = _checkpoint_files(train_dir)
  cluster.kill('ps')
  killed = time.time()
  if stop:
    time.sleep(0.5)
    cluster.stop('worker0', stop)
  out = cluster.finish('worker0', expect_rc=128 + stop if stop else 1)
  # A hang would end only at PROCESS_TIMEOUT_SECS.
  assert time.time() - killed < 50, out
  kept = 'the last checkpoint in %s is kept' % train_dir
  if stop:
    expected = ('%s: error: worker 0: stopped by SIGINT; parameter server ps 0 '
                'at 127.0.0.1:%d does not answer, so no final checkpoint was '
                'saved; %s' % (SCRIPT, ps_port, kept))
  else:
    expected = ('%s: error: worker 0: parameter server ps 0 at 127.0.0.1:%d '
                'has not answered for 3 s (--ps_timeout_secs): it has stopped '
                'or cannot be reached, and the variables it held with it; %s: '
                'restart the ps and the workers to resume from it'
                % (SCRIPT, ps_port, kept))
  assert out.splitlines()[-1] == expected, out
  after = _checkpoint_files(train_dir)
  assert {name: after.get(name) for name in saved} == saved
  last, step = fakes.latest_step(train_dir)
  assert step >= 20

  cluster.start('ps_again', hosts + ['--job_name=ps'])
  cluster.wait_listening('ps_again', ps_port)
  cluster.start('worker0_again', worker + ['--max_steps=%d' % (step + 10)])
  out = cluster.finish('worker0_again')
  assert 'Resuming from %s\n' % last in out, out
  assert _checkpoint_step(train_dir) == step + 10


@pytest.mark.parametrize('args, env, status, message', [
    ([], {'TF_CONFIG': '{"cluster": {"ps": ["127.0.0.1:2222"]'}, 1,
     '$TF_CONFIG is not valid JSON'),
    (['--ps_hosts=127.0.0.1:2222', '--worker_hosts=127.0.0.1:2223',
      '--job_name=chief'], {}, 2, 'flag --job_name=chief'),
])
def test_bad_cluster_on_the_command_line_is_one_line(args, env, status,
                                                     message):
  result = run_script(SCRIPT, *args, env=env, check=False, timeout=120)
  assert result.returncode == status, result.stderr
  lines = result.stderr.splitlines()
  assert len(lines) == 1 and message in lines[0], result.stderr


@pytest.fixture(scope='module')
def dist():
  from cifar10lib.training import cluster_spec
  return cluster_spec


def test_tf_config_gives_the_same_cluster_as_the_flags(dist):
  ps, workers = ['10.0.0.1:2222'], ['10.0.0.2:2222', '10.0.0.3:2222']
  for job, index in (('ps', 0), ('worker', 0), ('worker', 1)):
    from_flags = dist.resolve_cluster(','.join(ps), ','.join(workers), job,
                                      index)
    from_env = dist.resolve_cluster(tf_config=json.dumps(
        {'cluster': {'ps': ps, 'worker': workers},
         'task': {'type': job, 'index': index}}))
    assert from_flags == from_env == (
        {'ps': ps, 'worker': workers}, job, index)
  # A "chief" job, as some cluster managers write it, is worker 0.
  for task, expected in (({'type': 'chief', 'index': 0}, 0),
                         ({'type': 'worker', 'index': 0}, 1)):
    assert dist.resolve_cluster(tf_config=json.dumps(
        {'cluster': {'ps': ps, 'chief': workers[:1], 'worker': workers[1:]},
         'task': task})) == ({'ps': ps, 'worker': workers}, 'worker',
                             expected)
  # Flags win over TF_CONFIG; a missing --task_index is 0.
  assert dist.resolve_cluster(
      ','.join(ps), ','.join(workers), 'worker', None,
      tf_config='{"not": "used"}') == ({'ps': ps, 'worker': workers},
                                       'worker', 0)


@pytest.mark.parametrize('kwargs, message', [
    (dict(ps_hosts='localhost', worker_hosts='h:1', job_name='ps'),
     "--ps_hosts: 'localhost' is not host:port"),
    (dict(ps_hosts='h:0', worker_hosts='h:1', job_name='ps'),
     "--ps_hosts: 'h:0' is not host:port"),
    (dict(ps_hosts='h:1', worker_hosts='h:2,h:65536', job_name='ps'),
     "--worker_hosts: 'h:65536' is not host:port"),
    (dict(ps_hosts='h:1', worker_hosts='h:2,,h:3', job_name='ps'),
     "--worker_hosts: '' is not host:port"),
    (dict(ps_hosts='h:1', worker_hosts=' ', job_name='ps'),
     '--worker_hosts: needs at least one host:port'),
    (dict(ps_hosts='h:1', worker_hosts='h:2,h:1', job_name='ps'),
     'h:1 is given twice in the cluster'),
    (dict(ps_hosts='h:1', worker_hosts='h:2,h:3', job_name='worker',
          task_index=2),
     '--task_index=2 is out of range: the worker job has 2 task(s), 0 to 1'),
    (dict(ps_hosts='h:1', worker_hosts='h:2', task_index=0),
     '--job_name is missing'),
    (dict(), 'no cluster: give --ps_hosts'),
    (dict(tf_config='[1, 2'), '$TF_CONFIG is not valid JSON'),
    (dict(tf_config='{"task": {"type": "ps"}}'),
     '$TF_CONFIG has no "cluster" object'),
    (dict(tf_config='{"cluster": {"ps": [], "worker": ["h:1"]}, '
                    '"task": {"type": "worker", "index": 0}}'),
     '$TF_CONFIG cluster.ps: needs at least one host:port'),
    (dict(tf_config='{"cluster": {"ps": ["h:1"], "worker": ["h:2"], '
                    '"master": ["h:3"]}, "task": {"type": "ps"}}'),
     "$TF_CONFIG: unknown job 'master'"),
    (dict(tf_config='{"cluster": {"ps": ["h:1"], "worker": ["h:2"]}, '
                    '"task": {"type": "evaluator", "index": 0}}'),
     "$TF_CONFIG task.type 'evaluator': must be"),
    (dict(tf_config='{"cluster": {"ps": ["h:1"], "worker": ["h:2"]}, '
                    '"task": {"type": "worker", "index": "0"}}'),
     "$TF_CONFIG task.index '0': not a task index"),
    (dict(tf_config='{"cluster": {"ps": ["h:1"], "worker": ["h:2"]}, '
                    '"task": {"type": "ps", "index": 1}}'),
     '$TF_CONFIG task.index=1 is out of range: the ps job has 1 task(s)'),
])
def test_bad_cluster_is_named(dist, kwargs, message):
  from cifar10lib.base.errors import UserError
  with pytest.raises(UserError) as error:
    dist.resolve_cluster(**kwargs)
  assert message in str(error.value)


def test_chief_waiting_for_workers_says_so_and_stops_on_the_first_signal(
    cluster, data_dir, tmp_path):
  """Worker 1 never starts: the chief waits --worker_timeout_secs (600 s) for
  it, and says so once; SIGTERM ends the wait at once, with a checkpoint."""
  ps_port, w0_port, w1_port = fakes.free_ports(3)
  ps_hosts, worker_hosts = _hosts(ps_port, [w0_port, w1_port])
  hosts = ['--ps_hosts=' + ','.join(ps_hosts),
           '--worker_hosts=' + ','.join(worker_hosts)]
  train_dir = str(tmp_path / 'train')
  cluster.start('ps', hosts + ['--job_name=ps', '--task_index=0'])
  cluster.start('worker0', hosts + [
      '--job_name=worker', '--task_index=0', '--data_dir', data_dir,
      '--train_dir', train_dir, '--batch_size=16', '--max_steps=1000'])
  waiting = ('Waiting up to 600 s (--worker_timeout_secs) for the other 1 '
             'worker to join; Ctrl-C stops.')
  deadline = time.time() + PROCESS_TIMEOUT_SECS
  while waiting not in cluster.output('worker0'):
    assert time.time() < deadline, cluster.output('worker0')
    time.sleep(0.2)
  cluster.stop('worker0', signal.SIGTERM)
  stopped = time.time()
  out = cluster.finish('worker0', expect_rc=128 + signal.SIGTERM)
  assert time.time() - stopped < 30, out
  assert out.count(waiting) == 1, out
  assert 'Stopped by SIGTERM at step 0' in out, out
  assert _checkpoint_step(train_dir) == 0
