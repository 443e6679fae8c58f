"""A cluster of separate network hosts on one Linux machine, for the tests.

Each host is a network namespace made here, with one interface (`eth0`, one
end of a veth pair) whose other end is a port of a bridge living in a
namespace of its own: a small switched network. The hosts' addresses are in
SUBNET, which exists only inside these namespaces: no packet of theirs can
reach any other network, and two clusters (of two test runs at once) never
see each other. The namespace names start with a prefix holding this
process's id, so concurrent runs never collide, and namespaces left by a
run that was killed can be recognised and removed by the next one.

A cluster runs the repository's scripts in its hosts (`ip netns exec`), and
can cut a host's link, make it slow and lossy (netns_wire.py), or kill
every process of a host. On exit it kills every process in its namespaces and deletes them,
whatever happened. Needs root and iproute2; `unavailable()` says in one line
why a cluster cannot be made here. bench/netns_cluster_rate.py reuses it by
hand.
"""
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

from script_runs import REPO, as_a_terminal_starts_it

SUBNET = '10.231.7'          # a /24 that exists only inside the namespaces
PORT = 2222                  # every host has its own address: one port
NAME_PREFIX = 'c10nn'        # c10nn-<pid>-<n>-br, c10nn-<pid>-<n>-h0, ...
_counter = itertools.count()


def _ip(*args, check=True):
  """Runs `ip args`; raises RuntimeError with its stderr on failure."""
  result = subprocess.run(('ip',) + args, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True)
  if check and result.returncode:
    raise RuntimeError('ip %s: %s' % (' '.join(args), result.stderr.strip()))
  return result


def namespaces():
  """The names of the network namespaces that exist now."""
  result = _ip('netns', 'list', check=False)
  return [line.split()[0] for line in result.stdout.splitlines()
          if line.strip()]


def _pids_in(namespace):
  result = _ip('netns', 'pids', namespace, check=False)
  return [int(p) for p in result.stdout.split()]


def _kill_until_gone(find_pids):
  """SIGKILLs the pids find_pids() returns until it returns none; a process
  forking meanwhile is caught by the next of three rounds."""
  for _ in range(3):
    pids = find_pids()
    if not pids:
      return
    for pid in pids:
      try:
        os.kill(pid, signal.SIGKILL)
      except OSError:
        pass
    time.sleep(0.05)


def _kill_and_delete(names):
  """SIGKILLs every process in the namespaces, then deletes them."""
  for name in names:
    _kill_until_gone(lambda: _pids_in(name))
  for name in names:
    _ip('netns', 'delete', name, check=False)


def remove_stale():
  """Deletes the namespaces of clusters whose process no longer exists."""
  stale = []
  for name in namespaces():
    match = re.match(NAME_PREFIX + r'-(\d+)-', name)
    if match and not os.path.exists('/proc/%s' % match.group(1)):
      stale.append(name)
  _kill_and_delete(stale)


def unavailable():
  """Why no cluster can be made here (one line), or None."""
  if not sys.platform.startswith('linux'):
    return 'not Linux'
  if os.geteuid() != 0:
    return 'not running as root'
  if not shutil.which('ip'):
    return 'no `ip` command (iproute2)'
  probe = '%s-%d-probe' % (NAME_PREFIX, os.getpid())
  result = _ip('netns', 'add', probe, check=False)
  if result.returncode:
    return 'ip netns add failed: %s' % (
        result.stderr.strip().splitlines() or ['ip netns add failed'])[0]
  try:
    veth = _ip('-n', probe, 'link', 'add', 'name', 'a', 'type', 'veth',
               'peer', 'name', 'b', check=False)
    if veth.returncode:
      return 'no veth pairs: %s' % veth.stderr.strip()
  finally:
    _ip('netns', 'delete', probe, check=False)
  return None


class Cluster(object):
  """num_hosts hosts on one bridge; processes logged under log_dir.

  Use it as a context manager: leaving the block removes everything.
  """

  def __init__(self, num_hosts, log_dir):
    self.num_hosts = num_hosts
    self._log_dir = str(log_dir)
    self.prefix = '%s-%d-%d' % (NAME_PREFIX, os.getpid(), next(_counter))
    self.bridge = self.prefix + '-br'
    self.hosts = ['%s-h%d' % (self.prefix, i) for i in range(num_hosts)]
    self._procs = {}
    self._namespace_of = {}   # name of a started process -> its namespace
    self._made = []

  def __enter__(self):
    remove_stale()
    try:
      self._make()
    except BaseException:
      self.close()
      raise
    return self

  def __exit__(self, *exc_info):
    self.close()

  def _make(self):
    for name in [self.bridge] + self.hosts:
      _ip('netns', 'add', name)
      self._made.append(name)
      _ip('-n', name, 'link', 'set', 'lo', 'up')
    _ip('-n', self.bridge, 'link', 'add', 'br0', 'type', 'bridge')
    _ip('-n', self.bridge, 'link', 'set', 'br0', 'up')
    for i, host in enumerate(self.hosts):
      # Made inside the host, its peer moved straight into the bridge's
      # namespace: the machine's own namespace never sees either end.
      _ip('-n', host, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name',
          self._port(i), 'netns', self.bridge)
      _ip('-n', host, 'addr', 'add', self.address(i) + '/24', 'dev', 'eth0')
      _ip('-n', host, 'link', 'set', 'eth0', 'up')
      _ip('-n', self.bridge, 'link', 'set', self._port(i), 'master', 'br0')
      _ip('-n', self.bridge, 'link', 'set', self._port(i), 'up')

  @staticmethod
  def _port(host):
    return 'p%d' % host

  @staticmethod
  def address(host):
    """Host's IP address."""
    return '%s.%d' % (SUBNET, host + 1)

  def endpoint(self, host):
    """host:port of the task on host."""
    return '%s:%d' % (self.address(host), PORT)

  # ------------------------------------------------------------ processes

  def start(self, name, host, argv, env=None):
    """Starts argv (a script of the repository and its flags, or any
    command) in host; its output goes to log_path(name)."""
    return self._spawn(name, self.hosts[host], argv, env)

  def _spawn(self, name, namespace, argv, env=None):
    full_env = dict(os.environ)
    full_env.pop('TF_CONFIG', None)
    full_env.update(env or {})
    command = list(argv)
    if command[0].endswith('.py'):
      command = [sys.executable, os.path.join(REPO, command[0])] + command[1:]
    log = open(self.log_path(name), 'w')
    try:
      self._namespace_of[name] = namespace
      self._procs[name] = subprocess.Popen(
          ['ip', 'netns', 'exec', namespace] + command, cwd=REPO,
          env=full_env, stdout=log, stderr=subprocess.STDOUT,
          start_new_session=True, preexec_fn=as_a_terminal_starts_it)
    finally:
      log.close()
    return self._procs[name]

  def log_path(self, name):
    return os.path.join(self._log_dir, name + '.log')

  def output(self, name):
    with open(self.log_path(name), errors='replace') as f:
      return f.read()

  def wait(self, name, timeout):
    """name's exit status; None if it still runs after timeout s."""
    try:
      return self._procs[name].wait(timeout=timeout)
    except subprocess.TimeoutExpired:
      return None

  def running(self, name):
    return self._procs[name].poll() is None

  def signal(self, name, sig):
    self._procs[name].send_signal(sig)

  def wait_for_output(self, name, pattern, timeout):
    """The first match of pattern in name's output; None after timeout s or
    once name has exited without printing it."""
    deadline = time.time() + timeout
    while True:
      match = re.search(pattern, self.output(name), re.M)
      if match or time.time() > deadline:
        return match
      if not self.running(name):
        return re.search(pattern, self.output(name), re.M)
      time.sleep(0.1)

  def link_bytes(self, host):
    """(bytes sent, bytes received) so far by host's interface."""
    result = _ip('-n', self.hosts[host], '-s', '-j', 'link', 'show', 'eth0')
    stats = json.loads(result.stdout)[0]['stats64']
    return stats['tx']['bytes'], stats['rx']['bytes']

  # ------------------------------------------------------------ faults

  def cut(self, host):
    """Pulls host's cable: its bridge port goes down, the host stays up."""
    _ip('-n', self.bridge, 'link', 'set', self._port(host), 'down')

  def reconnect(self, host):
    _ip('-n', self.bridge, 'link', 'set', self._port(host), 'up')

  def slow_link(self, host, delay_ms, loss):
    """What host sends is delayed delay_ms and lost with probability loss.

    As `tc qdisc add dev eth0 root netem delay <delay_ms>ms loss <loss>`
    on host would, but in user space (netns_wire.py), since netem is not
    built into every kernel. Call it before starting host's processes: the
    host's interface is replaced by a TAP device, with the same address.
    """
    host_ns, port = self.hosts[host], self._port(host)
    _ip('-n', host_ns, 'link', 'delete', 'eth0')  # its bridge port goes too
    _ip('-n', host_ns, 'tuntap', 'add', 'dev', 'eth0', 'mode', 'tap')
    _ip('-n', host_ns, 'addr', 'add', self.address(host) + '/24', 'dev',
        'eth0')
    _ip('-n', host_ns, 'link', 'set', 'eth0', 'up')
    _ip('-n', self.bridge, 'tuntap', 'add', 'dev', port, 'mode', 'tap')
    _ip('-n', self.bridge, 'link', 'set', port, 'master', 'br0')
    _ip('-n', self.bridge, 'link', 'set', port, 'up')
    name = 'wire%d' % host
    self._spawn(name, self.bridge, [
        sys.executable, os.path.join(os.path.dirname(__file__),
                                     'netns_wire.py'),
        port, host_ns, 'eth0', '--delay_ms', str(delay_ms),
        '--loss', str(loss)])
    deadline = time.time() + 30
    while 'carrying' not in self.output(name):
      if not self.running(name) or time.time() > deadline:
        raise RuntimeError('netns_wire.py did not start:\n' +
                           self.output(name))
      time.sleep(0.05)

  def kill_host(self, host):
    """SIGKILLs every process of host, as if it lost its power.

    Those this cluster started there are killed by their own pid as well:
    `ip netns pids` scans /proc and can miss a process on a busy machine.
    """
    namespace = self.hosts[host]
    started = [proc for name, proc in self._procs.items()
               if self._namespace_of.get(name) == namespace]
    _kill_until_gone(lambda: set(_pids_in(namespace)) | {
        proc.pid for proc in started if proc.poll() is None})
    for proc in started:
      proc.wait()

  # ------------------------------------------------------------ cleanup

  def close(self):
    """Kills every process this cluster started or its hosts hold, and
    deletes its namespaces."""
    for proc in self._procs.values():
      if proc.poll() is None:
        try:
          os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
          pass
    _kill_and_delete(list(self._made))
    for proc in self._procs.values():
      try:
        proc.wait(timeout=30)
      except subprocess.TimeoutExpired:
        pass
    self._made = []

