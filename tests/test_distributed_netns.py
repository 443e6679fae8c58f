"""cifar10_dist_train.py across separate network hosts (netns_cluster.py).

Every task runs in a network namespace of its own, with its own address,
behind a link that a test can slow down, cut or take away with its host:
what a cluster on 127.0.0.1 never shows. The cluster comes from TF_CONFIG,
as a cluster manager sets it. Each fault asserts the one line the scripts
print, that it came within the bound the flags set, and that no saved
checkpoint was lost. They skip, in one line, where namespaces cannot be made.
"""
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

import fakes
import netns_cluster

SCRIPT = 'cifar10_dist_train.py'
PS, CHIEF, WORKER1, SPARE = 0, 1, 2, 3   # the hosts' roles
HANG_SECS = 150          # a bound against hangs only, never a timing check
# A synchronous chief's first update waits for the other worker to start
# (TensorFlow's import alone takes 10 s or more on a loaded machine): the
# same bound must cover that.
WORKER_TIMEOUT_SECS = 30
PS_TIMEOUT_SECS = 6
# A fault must be reported within its flag's bound plus this much: the
# probes' period, a step under way, a loaded 2-core machine.
SLACK_SECS = 25


@pytest.fixture
def make_cluster(tmp_path):
  """make_cluster(num_hosts): a netns_cluster.Cluster, removed afterwards."""
  reason = netns_cluster.unavailable()
  if reason:
    pytest.skip('cannot make network namespaces: ' + reason)
  made = []

  def make(num_hosts=3):
    cluster = netns_cluster.Cluster(num_hosts, tmp_path).__enter__()
    made.append(cluster)
    return cluster

  try:
    yield make
  finally:
    for cluster in made:
      cluster.close()


def tf_config(cluster, job, index, num_workers=2):
  """TF_CONFIG for a task: the ps on host 0, worker i on host i + 1."""
  spec = {'ps': [cluster.endpoint(PS)],
          'worker': [cluster.endpoint(CHIEF + i) for i in range(num_workers)]}
  return {'TF_CONFIG': json.dumps({'cluster': spec,
                                   'task': {'type': job, 'index': index}})}


def start_task(cluster, name, job, index, flags=(), num_workers=2, host=None):
  host = (PS if job == 'ps' else CHIEF + index) if host is None else host
  argv = [SCRIPT] + list(flags)
  return cluster.start(name, host, argv,
                       env=tf_config(cluster, job, index, num_workers))


def training_flags(data_dir, train_dir, *extra):
  return ['--data_dir', data_dir, '--train_dir', train_dir,
          '--batch_size=16', '--log_frequency=2',
          '--save_checkpoint_steps=4', '--save_summaries_steps=1000',
          '--ps_timeout_secs=%d' % PS_TIMEOUT_SECS,
          '--worker_timeout_secs=%d' % WORKER_TIMEOUT_SECS] + list(extra)


def finish(cluster, name, expect_rc=0):
  rc = cluster.wait(name, HANG_SECS)
  out = cluster.output(name)
  assert rc == expect_rc, '%s exited %s:\n%s' % (name, rc, out)
  assert 'Traceback' not in out, out
  return out


def saved(train_dir):
  """{file: sha256} of the checkpoints' variable files in train_dir."""
  found = {}
  for name in os.listdir(train_dir):
    if re.match(r'model\.ckpt-\d+\.(index|data-\d+-of-\d+)$', name):
      with open(os.path.join(train_dir, name), 'rb') as f:
        found[name] = hashlib.sha256(f.read()).hexdigest()
  return found


def latest(train_dir):
  """(path, step in its name) of train_dir's latest checkpoint, or
  (None, -1).

  By name: in an asynchronous cluster the other workers may update the
  global step between the chief's reading it for the name and the save.
  """
  if not os.path.exists(os.path.join(train_dir, 'checkpoint')):
    return None, -1
  name = fakes.recorded_checkpoint(train_dir)
  return (os.path.join(train_dir, name),
          int(re.match(r'model\.ckpt-(\d+)$', name).group(1)))


def assert_kept(train_dir, kept):
  """Every checkpoint file of kept (saved()) is there, unchanged.

  (One saved meanwhile may be added; the tests stop before the saver's
  max_to_keep would delete one.)
  """
  now = saved(train_dir)
  assert {name: now.get(name) for name in kept} == kept


def wait_for_checkpoint(cluster, train_dir, step, watched):
  """Waits until a checkpoint at step or later is in train_dir."""
  deadline = time.time() + HANG_SECS
  while True:
    if latest(train_dir)[1] >= step:
      return
    assert time.time() < deadline and cluster.running(watched), (
        cluster.output(watched))
    time.sleep(0.2)


def evaluate_on_spare_host(cluster, train_dir, data_dir, eval_dir):
  """cifar10_eval.py --run_once on the fourth host; returns its output."""
  cluster.start('eval', SPARE, ['cifar10_eval.py', '--run_once',
                                '--checkpoint_dir', train_dir,
                                '--data_dir', data_dir, '--eval_dir', eval_dir,
                                '--batch_size=50'])
  return finish(cluster, 'eval')


def error_line(out):
  lines = [l for l in out.splitlines() if l.strip()]
  return lines[-1] if lines else ''


def own_rates(out):
  """The examples/sec of a worker's own progress lines."""
  return [float(r) for r in re.findall(
      r'^\S+ \S+: step \d+, loss = \S+ \((\d+\.\d) examples/sec', out, re.M)]


_worker1_rates = {}   # link: worker 1's median examples/sec, for the log


@pytest.mark.parametrize('sync, link', [(False, 'clean'), (True, 'clean'),
                                        (False, 'slow')],
                         ids=['async', 'sync', 'async-slow-lossy-link'])
def test_cluster_on_three_hosts_trains_and_a_fourth_evaluates(
    make_cluster, data_dir, tmp_path, sync, link):
  """The slow link: 50 ms delay and 1 % loss on what worker 1 sends."""
  cluster = make_cluster(4)
  if link == 'slow':
    cluster.slow_link(WORKER1, delay_ms=50, loss=0.01)
  train_dir = str(tmp_path / 'train')
  steps = 8 if sync else 16
  flags = training_flags(data_dir, train_dir, '--max_steps=%d' % steps,
                         '--log_frequency=1',
                         *(['--sync_replicas'] if sync else []))
  start_task(cluster, 'ps', 'ps', 0)
  start_task(cluster, 'worker1', 'worker', 1, flags)
  start_task(cluster, 'worker0', 'worker', 0, flags)
  out0 = finish(cluster, 'worker0')
  out1 = finish(cluster, 'worker1')
  # Each task is on its own host: the chief's server has host 1's address.
  assert re.search(r'^worker 0 \(chief\): server at %s, %s updates$' % (
      re.escape(cluster.endpoint(CHIEF)),
      'synchronous' if sync else 'asynchronous'), out0, re.M), out0
  step = latest(train_dir)[1]
  if sync:
    for task, out in enumerate((out0, out1)):
      assert ('worker %d: sent %d gradients, computed at global steps 0-%d; '
              'received %d updates' % (task, steps, steps - 1, steps)) in out
    assert step == steps
  else:
    assert 'All 2 workers have joined' in out0
    assert step >= steps
  evaluated = evaluate_on_spare_host(cluster, train_dir, data_dir,
                                     str(tmp_path / 'eval'))
  assert re.search(r'precision @ 1 = \d\.\d{3} \(\d+/100 correct, global step '
                   r'\d+, model\.ckpt-%d\)' % step, evaluated), evaluated
  if not sync:
    # What the link cost worker 1 (shown with -s; bench/netns_cluster_rate.py
    # measures it properly).
    rates = sorted(own_rates(out1)) or [0.0]
    _worker1_rates[link] = rates[len(rates) // 2]
    print('worker 1 on a %s link: median %.1f examples/sec over %d lines%s'
          % (link, _worker1_rates[link], len(own_rates(out1)),
             '' if len(_worker1_rates) < 2 else ' (clean: %.1f)'
             % _worker1_rates['clean']))


def steps_logged(out):
  """The global steps of a worker's progress lines."""
  return [int(s) for s in re.findall(r'^\S+ \S+: step (\d+), loss', out,
                                     re.M)]


def wait_for_more_steps(cluster, name, than, count=2):
  """Waits until name has logged count more progress lines than `than`."""
  deadline = time.time() + HANG_SECS
  while len(steps_logged(cluster.output(name))) < than + count:
    assert time.time() < deadline and cluster.running(name), (
        cluster.output(name))
    time.sleep(0.2)


def stop_all(cluster, *names):
  """SIGTERM to each; each must end its step and exit with 128 + SIGTERM,
  as the scripts do after a clean stop by a signal."""
  for name in names:
    cluster.signal(name, signal.SIGTERM)
  for name in names:
    finish(cluster, name, expect_rc=128 + signal.SIGTERM)


def test_lost_worker_host_then_the_chiefs_asynchronous_training_goes_on(
    make_cluster, data_dir, tmp_path):
  """A worker's host, then the chief's, lost and back, in one cluster."""
  cluster = make_cluster(3)
  train_dir = str(tmp_path / 'train')
  flags = training_flags(data_dir, train_dir, '--max_steps=100000')
  start_task(cluster, 'ps', 'ps', 0)
  start_task(cluster, 'worker1', 'worker', 1, flags)
  start_task(cluster, 'worker0', 'worker', 0, flags)
  wait_for_checkpoint(cluster, train_dir, 4, 'worker0')

  cluster.kill_host(WORKER1)
  # The chief trains on alone...
  wait_for_more_steps(cluster, 'worker0',
                      len(steps_logged(cluster.output('worker0'))))
  # ...and the host, back, joins the running cluster.
  start_task(cluster, 'worker1_again', 'worker', 1, flags)
  wait_for_more_steps(cluster, 'worker1_again', 0)

  cluster.kill_host(CHIEF)
  last, _ = latest(train_dir)
  # The checkpoint it names is whole: every tensor reads.
  assert fakes.checkpoint_step(last) >= 4
  # The other worker trains on without the chief...
  wait_for_more_steps(cluster, 'worker1_again',
                      len(steps_logged(cluster.output('worker1_again'))))
  # ...and the chief, started again, resumes from its last checkpoint.
  start_task(cluster, 'worker0_again', 'worker', 0,
             flags + ['--save_checkpoint_steps=100000'])
  assert cluster.wait_for_output('worker0_again', r'^Resuming from ',
                                 HANG_SECS), cluster.output('worker0_again')
  out = cluster.output('worker0_again')
  assert 'Resuming from %s\n' % last in out, out
  seen = len(steps_logged(cluster.output('worker1_again')))
  wait_for_more_steps(cluster, 'worker0_again', 0)
  wait_for_more_steps(cluster, 'worker1_again', seen)
  # SIGTERM stops each after its step; the chief saves a checkpoint.
  stop_all(cluster, 'worker0_again', 'worker1_again')
  assert 'Stopped by SIGTERM at step ' in cluster.output('worker0_again')


def test_lost_worker_host_stops_sync_training_in_one_line_then_resumes(
    make_cluster, data_dir, tmp_path):
  cluster = make_cluster(3)
  train_dir = str(tmp_path / 'train')
  flags = training_flags(data_dir, train_dir, '--sync_replicas')
  start_task(cluster, 'ps', 'ps', 0)
  start_task(cluster, 'worker1', 'worker', 1, flags + ['--max_steps=100000'])
  start_task(cluster, 'worker0', 'worker', 0, flags + ['--max_steps=100000'])
  wait_for_checkpoint(cluster, train_dir, 4, 'worker0')
  kept = saved(train_dir)
  cluster.kill_host(WORKER1)
  seen = len(steps_logged(cluster.output('worker0')))
  rc = cluster.wait('worker0', WORKER_TIMEOUT_SECS + SLACK_SECS)
  out = cluster.output('worker0')
  if rc is None and len(steps_logged(out)) >= seen + 2:
    # Worker 1 was lost between two updates, holding none of the round's
    # tokens: SyncReplicasOptimizer counts gradients, not workers, so the
    # chief takes both tokens and fills each update alone. It trains on
    # (its old checkpoints rotate out as usual) until stopped.
    stop_all(cluster, 'worker0')
  else:
    # Lost while computing its gradient: the round never completes.
    assert rc == 1, 'worker0 exited %s:\n%s' % (rc, out)
    assert 'Traceback' not in out, out
    assert error_line(out) == (
        '%s: error: worker 0: no update within %d s (--worker_timeout_secs): '
        'another worker has stopped or cannot be reached; the last '
        'checkpoint in %s is kept' % (SCRIPT, WORKER_TIMEOUT_SECS,
                                      train_dir)), out
    assert_kept(train_dir, kept)
  last, step = latest(train_dir)
  # The host is back: the whole cluster starts again from the chief's last
  # checkpoint. (The ps still holds the lost update's half-gathered
  # gradients, which a new synchronous round may wait on.)
  cluster.signal('ps', signal.SIGKILL)
  cluster.wait('ps', HANG_SECS)
  start_task(cluster, 'ps_again', 'ps', 0)
  flags.append('--max_steps=%d' % (step + 4))
  start_task(cluster, 'worker1_again', 'worker', 1, flags)
  start_task(cluster, 'worker0_again', 'worker', 0, flags)
  out = finish(cluster, 'worker0_again')
  finish(cluster, 'worker1_again')
  assert 'Resuming from %s\n' % last in out, out
  assert latest(train_dir)[1] == step + 4


def test_lost_ps_link_stops_training_in_one_line_and_nothing_saved_is_lost(
    make_cluster, data_dir, tmp_path):
  cluster = make_cluster(2)
  train_dir = str(tmp_path / 'train')
  flags = training_flags(data_dir, train_dir)
  start_task(cluster, 'ps', 'ps', 0, num_workers=1)
  start_task(cluster, 'worker0', 'worker', 0, flags + ['--max_steps=100000'],
             num_workers=1)
  wait_for_checkpoint(cluster, train_dir, 8, 'worker0')
  kept = saved(train_dir)
  cluster.cut(PS)
  cut = time.time()
  out = finish(cluster, 'worker0', expect_rc=1)
  assert time.time() - cut < PS_TIMEOUT_SECS + SLACK_SECS, out
  assert error_line(out) == (
      '%s: error: worker 0: parameter server ps 0 at %s has not answered for '
      '%d s (--ps_timeout_secs): it has stopped or cannot be reached, and the '
      'variables it held with it; the last checkpoint in %s is kept: restart '
      'the ps and the workers to resume from it' % (
          SCRIPT, cluster.endpoint(PS), PS_TIMEOUT_SECS, train_dir)), out
  assert_kept(train_dir, kept)
  last, step = latest(train_dir)
  # The link is back (the ps kept running behind it): the chief resumes.
  cluster.reconnect(PS)
  start_task(cluster, 'worker0_again', 'worker', 0,
             flags + ['--max_steps=%d' % (step + 4)], num_workers=1)
  out = finish(cluster, 'worker0_again')
  assert 'Resuming from %s\n' % last in out, out
  assert latest(train_dir)[1] == step + 4


INNER_TEST = """
import os, sys
sys.path.insert(0, %(tests)r)
import netns_cluster
from test_distributed_netns import make_cluster  # the fixture under test


def record(cluster, proc):
  with open(%(record)r, 'a') as f:
    f.write('%%s %%d\\n' %% (cluster.prefix, proc.pid))


def test_fails_with_a_cluster_of_the_fixture(make_cluster):
  cluster = make_cluster(2)
  record(cluster, cluster.start('sleeper', 1, ['sleep', '300']))
  assert False, 'failing on purpose'


def test_fails_in_a_cluster_block(tmp_path):
  with netns_cluster.Cluster(2, tmp_path) as cluster:
    record(cluster, cluster.start('sleeper', 0, ['sleep', '300']))
    raise RuntimeError('failing on purpose')
"""


def test_a_failing_test_leaves_no_namespace_or_process_behind(
    make_cluster, tmp_path):
  """A test that fails with a cluster running: its namespaces and its
  processes are gone afterwards."""
  record = str(tmp_path / 'made')
  inner = tmp_path / 'test_inner.py'
  inner.write_text(INNER_TEST % {'tests': os.path.dirname(__file__),
                                 'record': record})
  before = netns_cluster.namespaces()
  result = subprocess.run(
      [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider',
       '-p', 'no:xdist', '-c', os.devnull, str(inner)], cwd=str(tmp_path),
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
      universal_newlines=True, timeout=HANG_SECS)
  assert result.returncode == 1 and '2 failed' in result.stdout, (
      result.stdout)
  made = [line.split() for line in open(record).read().splitlines()]
  assert len(made) == 2, made
  after = netns_cluster.namespaces()
  # Every name the inner run made starts with c10nn-<its pid>- (another
  # run may make namespaces of its own meanwhile).
  inner_run = made[0][0].rsplit('-', 1)[0] + '-'
  assert [n for n in after if n.startswith(inner_run)] == []
  assert [n for n in set(after) - set(before)
          if n.startswith(inner_run)] == []
  for _, pid in made:
    assert not os.path.exists('/proc/%s' % pid)


def test_without_root_the_reason_to_skip_is_one_line(make_cluster):
  """What these tests print when they skip (run here as user nobody)."""
  result = subprocess.run(
      [sys.executable, '-c', 'import os, netns_cluster; os.setuid(65534); '
       'print(netns_cluster.unavailable())'], cwd=os.path.dirname(__file__),
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
      timeout=60)
  assert result.stdout == 'not running as root\n', result.stderr
