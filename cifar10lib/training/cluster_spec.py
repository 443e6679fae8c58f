"""A TensorFlow cluster from the command line or TF_CONFIG, and its servers.

`resolve_cluster` turns --ps_hosts/--worker_hosts/--job_name/--task_index,
or the TF_CONFIG variable that cluster managers set, into the cluster and
this task, checking both; `wait_for_ps` and `start_server` turn the ways a
cluster fails to come up (a ps that never answers, a port in use) into one
line instead of a wait without end or gRPC's log, and `watching_ps` does the
same for a ps that dies while the workers train.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import contextlib
import json
import socket
import threading
import time

from cifar10lib.base.compat import tf
from cifar10lib.base.errors import UserError

TF_CONFIG = 'TF_CONFIG'
JOBS = ('ps', 'worker')
POLL_SECS = 0.25        # between attempts to reach a ps or a ready model
MAX_PORT = 65535
PROBE_SECS = 1.0        # between checks that a training cluster's ps answer


def _parse_address(source, address):
  """Checks that address is host:port; returns it stripped."""
  address = address.strip()
  host, _, port = address.rpartition(':')
  if not host or not port.isdigit() or not 0 < int(port) <= MAX_PORT:
    raise UserError('%s: %r is not host:port' % (source, address))
  return address


def parse_hosts(source, hosts):
  """Parses a comma-separated host:port list (or a JSON list) from source."""
  if isinstance(hosts, str):
    hosts = hosts.split(',') if hosts.strip() else []
  if not isinstance(hosts, list) or not hosts:
    raise UserError('%s: needs at least one host:port' % source)
  for address in hosts:
    if not isinstance(address, str):
      raise UserError('%s: %r is not host:port' % (source, address))
  return [_parse_address(source, address) for address in hosts]


def _from_flags(ps_hosts, worker_hosts, job_name, task_index):
  for name, value in (('ps_hosts', ps_hosts), ('worker_hosts', worker_hosts),
                      ('job_name', job_name)):
    if value is None:
      raise UserError(
          '--%s is missing: a cluster needs --ps_hosts, --worker_hosts and '
          '--job_name (or none of them, and $TF_CONFIG)' % name)
  cluster = {'ps': parse_hosts('--ps_hosts', ps_hosts),
             'worker': parse_hosts('--worker_hosts', worker_hosts)}
  return cluster, job_name, task_index or 0, '--task_index'


def _from_tf_config(text):
  """The cluster and task of a TF_CONFIG value; "chief" becomes worker 0."""
  try:
    config = json.loads(text)
  except ValueError as e:
    raise UserError('$TF_CONFIG is not valid JSON: %s' % e)
  if not isinstance(config, dict) or not isinstance(config.get('cluster'),
                                                    dict):
    raise UserError('$TF_CONFIG has no "cluster" object')
  jobs = config['cluster']
  unknown = sorted(set(jobs) - set(JOBS + ('chief',)))
  if unknown:
    raise UserError('$TF_CONFIG: unknown job %r in "cluster" (jobs '
                            'are ps, worker and chief)' % unknown[0])
  chief = parse_hosts('$TF_CONFIG cluster.chief', jobs['chief']
                      ) if 'chief' in jobs else []
  if len(chief) > 1:
    raise UserError('$TF_CONFIG cluster.chief: holds %d addresses, '
                            'a cluster has one chief' % len(chief))
  workers = (parse_hosts('$TF_CONFIG cluster.worker', jobs['worker'])
             if 'worker' in jobs or not chief else [])
  cluster = {'ps': parse_hosts('$TF_CONFIG cluster.ps', jobs.get('ps')),
             'worker': chief + workers}
  task = config.get('task')
  if not isinstance(task, dict):
    raise UserError('$TF_CONFIG has no "task" object')
  job_name, index = task.get('type'), task.get('index', 0)
  if job_name not in JOBS + ('chief',):
    raise UserError('$TF_CONFIG task.type %r: must be "ps", "worker" '
                            'or "chief"' % (job_name,))
  if not isinstance(index, int) or isinstance(index, bool) or index < 0:
    raise UserError('$TF_CONFIG task.index %r: not a task index'
                            % (index,))
  if job_name == 'chief':
    job_name = 'worker'
  elif job_name == 'worker' and chief:
    index += 1
  return cluster, job_name, index, '$TF_CONFIG task.index'


def resolve_cluster(ps_hosts=None, worker_hosts=None, job_name=None,
                    task_index=None, tf_config=None):
  """Returns (cluster dict, job name, task index) from flags or TF_CONFIG.

  The flags win when any of them is given; otherwise tf_config (the text of
  $TF_CONFIG) must describe the cluster. Raises UserError, naming the flag or
  TF_CONFIG field, when the cluster or the task does not make sense.
  """
  if any(v is not None for v in (ps_hosts, worker_hosts, job_name,
                                 task_index)):
    cluster, job_name, index, source = _from_flags(ps_hosts, worker_hosts,
                                                   job_name, task_index)
  elif tf_config:
    cluster, job_name, index, source = _from_tf_config(tf_config)
  else:
    raise UserError(
        'no cluster: give --ps_hosts, --worker_hosts, --job_name and '
        '--task_index, or set $TF_CONFIG')
  seen = set()
  for address in cluster['ps'] + cluster['worker']:
    if address in seen:
      raise UserError('%s is given twice in the cluster' % address)
    seen.add(address)
  if index >= len(cluster[job_name]):
    raise UserError(
        '%s=%d is out of range: the %s job has %d task(s), 0 to %d'
        % (source, index, job_name, len(cluster[job_name]),
           len(cluster[job_name]) - 1))
  return cluster, job_name, index


def wait_for_ps(addresses, timeout_secs):
  """Waits until a TCP connection to every ps address succeeds.

  Raises UserError naming the first address still unreachable at the
  deadline; without this a session would wait for it forever.
  """
  deadline = time.time() + timeout_secs
  for i, address in enumerate(addresses):
    said = False
    while True:
      error = _connection_error(
          address, max(0.1, min(1.0, deadline - time.time())))
      if error is None:
        break
      if not said:
        said = True
        print('Waiting up to %d s (--ps_timeout_secs) for parameter server '
              'ps %d at %s (%s); Ctrl-C stops.' % (timeout_secs, i, address,
                                                   error), flush=True)
      if time.time() >= deadline:
        raise UserError(
            'cannot reach parameter server ps %d at %s within %d s '
            '(--ps_timeout_secs): %s' % (i, address, timeout_secs, error))
      time.sleep(POLL_SECS)


def _connection_error(address, timeout_secs):
  """Why address refuses a TCP connection within timeout_secs, or None."""
  host, _, port = address.rpartition(':')
  try:
    socket.create_connection((host.strip('[]'), int(port)),
                             timeout=timeout_secs).close()
    return None
  except (OSError, socket.error) as e:
    return getattr(e, 'strerror', None) or str(e) or type(e).__name__


@contextlib.contextmanager
def watching_ps(addresses, timeout_secs, on_lost, stop_requested):
  """Watches that every ps task still answers while the block runs.

  A step whose ps task has died waits inside TensorFlow's runtime for ever,
  deaf to signals, and gRPC keeps trying to reconnect. So a thread tries a
  connection to each ps every PROBE_SECS; when one has not answered for
  timeout_secs, or for two tries in a row once stop_requested() names a
  stop signal, it calls on_lost(index, address, signal name or None), which
  must end the process.
  """
  done = threading.Event()

  def watch():
    silent_since = {}
    while not done.wait(PROBE_SECS):
      for i, address in enumerate(addresses):
        if _connection_error(address, PROBE_SECS) is None:
          silent_since.pop(i, None)
          continue
        silent = time.time() - silent_since.setdefault(i, time.time())
        signal_name = stop_requested()
        if silent >= timeout_secs or (signal_name and silent >= PROBE_SECS):
          on_lost(i, address, signal_name)
          return

  watcher = threading.Thread(target=watch, name='ps-watch')
  watcher.daemon = True
  watcher.start()
  try:
    yield
  finally:
    done.set()


def start_server(cluster, job_name, task_index, config=None):
  """Starts this task's gRPC server; UserError if its port is taken."""
  address = cluster[job_name][task_index]
  # TensorFlow's server listens on every interface; finding the port taken
  # there first gives one line instead of gRPC's own log of the failure.
  probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
  try:
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    probe.bind(('', int(address.rpartition(':')[2])))
  except (OSError, socket.error) as e:
    raise UserError('cannot start the %s %d server at %s: %s' % (
        job_name, task_index, address, e.strerror or e))
  finally:
    probe.close()
  try:
    return tf.train.Server(tf.train.ClusterSpec(cluster), job_name=job_name,
                           task_index=task_index, config=config)
  except tf.errors.OpError as e:
    raise UserError('cannot start the %s %d server at %s: %s' % (
        job_name, task_index, address, first_lines(e)))


def first_lines(error):
  """The gist of a TensorFlow error: its message without node details."""
  lines = [line.strip() for line in error.message.splitlines()
           if line.strip() and not line.strip().startswith('[[')]
  return ' '.join(lines[:2])
