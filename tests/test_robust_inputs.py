"""Bad inputs end in one line naming what is wrong, never in a traceback.

Flags whose bad values only TensorFlow noticed (NaN floats, a --batch_size
past int32 or memory or the data), a --data_dir that cannot be written, a
tarball with a link in it, and downloads that fail slowly or in several
lines. Scripts run as a user runs them, as subprocesses; downloads come from
a real HTTP server on 127.0.0.1.
"""
import hashlib
import io
import os
import re
import subprocess
import tarfile
import threading
import time

from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer

import pytest

from conftest import run_script, run_scripts
from fakes import make_records, write_dataset
from cifar10lib import download
from cifar10lib.errors import DownloadError

SCRIPTS = ['cifar10_train.py', 'cifar10_multi_gpu_train.py',
           'cifar10_dist_train.py', 'cifar10_eval.py', 'cifar10_classify.py']
BATCH_FILES = ['data_batch_%d.bin' % i for i in range(1, 6)] + [
    'test_batch.bin']
TRAIN_EXAMPLES = 300   # conftest's data set: 5 files of 60


def _one_error_line(result, script, status=1):
  lines = result.stderr.splitlines()
  assert result.returncode == status, (result.stdout, result.stderr)
  assert len(lines) == 1, result.stderr
  assert lines[0].startswith(script + ': error: '), result.stderr
  return lines[0]


def _tree(root):
  """{relative path: (size, md5)} of every file under root, and its dirs."""
  state = {}
  for dirpath, dirnames, filenames in os.walk(str(root)):
    for name in dirnames:
      state[os.path.relpath(os.path.join(dirpath, name), str(root))] = 'dir'
    for name in filenames:
      path = os.path.join(dirpath, name)
      with open(path, 'rb') as f:
        state[os.path.relpath(path, str(root))] = hashlib.md5(
            f.read()).hexdigest()
  return state


# --- Float flags: NaN and infinities, for every float flag of every script.

def _float_flag_table(helps):
  """(script, flag) of every float flag the scripts' --help texts list, once.

  absl says "(a ... number)" or "(number ...)" of a float flag.
  """
  table, seen = [], set()
  for script, text in zip(SCRIPTS, helps):
    entries = re.split(r'\n  --(?:\[no\])?', '\n' + text)
    for entry in entries[1:]:
      name = entry.split(':')[0]
      if re.search(r'\((?:an? [\w -]*)?number', entry) and name not in seen:
        seen.add(name)
        table.append((script, name))
  return table


def test_every_float_flag_refuses_nan_and_infinities():
  helps = run_scripts([[script, '--help'] for script in SCRIPTS])
  table = _float_flag_table([result.stdout for result in helps])
  names = [name for _, name in table]
  # The enumeration finds what it should (and so would find new ones).
  for name in ['learning_rate', 'momentum', 'dropout_keep_prob',
               'learning_rate_decay_factor', 'num_epochs_per_decay',
               'min_fraction_of_examples_in_queue']:
    assert name in names
  bad_values = ['inf', '-inf']
  cases = [(script, name, value) for i, (script, name) in enumerate(table)
           for value in ['nan', bad_values[i % 2]]]
  results = run_scripts(
      [[script, '--%s=%s' % (name, value)] for script, name, value in cases])
  for (script, name, value), result in zip(cases, results):
    line = _one_error_line(result, script, status=2)
    assert '--%s=%s' % (name, value) in line, line
    # absl's own bounds catch an infinity past them; the rest is ours.
    assert ('must be a finite number' in line or
            '%s is not ' % value in line), line


# --- --batch_size: int32, memory, the training examples.

@pytest.mark.parametrize('flag,value,bound', [
    ('batch_size', 1000000000, 536870911),          # queue sizes are int32
    ('intra_op_threads', 3000000000, 65536),        # ConfigProto's int32
    ('inter_op_threads', 3000000000, 65536),
])
def test_integer_past_what_tensorflow_takes_is_a_flag_error(tmp_path, flag,
                                                             value, bound):
  result = run_script('cifar10_train.py', '--%s=%d' % (flag, value),
                      '--data_dir', str(tmp_path / 'data'),
                      '--train_dir', str(tmp_path / 'train'), check=False)
  line = _one_error_line(result, 'cifar10_train.py', status=2)
  assert '--%s=%d' % (flag, value) in line and str(bound) in line, line
  assert not os.listdir(str(tmp_path))


@pytest.mark.parametrize('script,batch_size,words', [
    ('cifar10_train.py', TRAIN_EXAMPLES + 1,
     ['larger than the %d training examples' % TRAIN_EXAMPLES]),
    ('cifar10_multi_gpu_train.py', 10 ** 8,
     ['larger than the %d training examples' % TRAIN_EXAMPLES]),
    ('cifar10_eval.py', 500000000, ['GiB, more than the', 'of memory']),
])
def test_batch_size_refused_before_the_graph(tmp_path, data_dir, script,
                                             batch_size, words):
  before = _tree(data_dir)
  out_dir = tmp_path / 'out'
  out_dir.mkdir()
  args = ['--data_dir', data_dir, '--batch_size=%d' % batch_size]
  if script == 'cifar10_eval.py':
    args += ['--checkpoint_dir', str(out_dir), '--eval_dir', str(out_dir),
             '--run_once']
  else:
    args += ['--train_dir', str(out_dir)]
  line = _one_error_line(run_script(script, *args, check=False), script)
  assert '--batch_size=%d' % batch_size in line
  for word in words:
    assert word in line, line
  assert _tree(data_dir) == before
  assert not os.listdir(str(out_dir))


def test_batch_size_of_all_training_examples_trains(tmp_path, data_dir):
  result = run_script('cifar10_train.py', '--data_dir', data_dir,
                      '--train_dir', str(tmp_path / 'train'),
                      '--batch_size=%d' % TRAIN_EXAMPLES, '--max_steps=1',
                      '--min_fraction_of_examples_in_queue=0.05')
  assert os.path.exists(str(tmp_path / 'train' / 'checkpoint')), result.stdout


# --- A --data_dir that cannot be written.

def _can_bind_mount_read_only(path):
  return subprocess.call(
      ['unshare', '-m', 'sh', '-c',
       'mount --bind -o ro "$0" "$0" && ! touch "$0/probe" 2>/dev/null',
       path], stderr=subprocess.DEVNULL) == 0


def test_read_only_data_dir_without_data(tmp_path):
  """A read-only bind mount (root ignores permission bits, not EROFS)."""
  data_dir = tmp_path / 'data'
  data_dir.mkdir()
  if not _can_bind_mount_read_only(str(data_dir)):
    pytest.skip('needs unshare -m and mount --bind (root)')
  script = os.path.join(os.path.dirname(os.path.dirname(
      os.path.abspath(__file__))), 'cifar10_train.py')
  result = subprocess.run(
      ['unshare', '-m', 'sh', '-c',
       'mount --bind -o ro "$1" "$1" && exec "$0" "$2" --data_dir "$1" '
       '--train_dir "$3" --data_url http://127.0.0.1:9/none.tar.gz',
       os.sys.executable, str(data_dir), script, str(tmp_path / 'train')],
      stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      universal_newlines=True, timeout=240)
  line = _one_error_line(result, 'cifar10_train.py')
  assert '--data_dir=%s' % data_dir in line
  assert 'cannot be written' in line and 'by hand' in line
  assert 'another --data_dir' in line
  assert not os.listdir(str(data_dir))
  assert not (tmp_path / 'train').exists()


# --- Downloads from a real server on 127.0.0.1.

def _tarball(entries):
  """A gzip tarball of [(TarInfo, bytes or None)]; returns its bytes."""
  buf = io.BytesIO()
  with tarfile.open(fileobj=buf, mode='w:gz') as tar:
    for info, data in entries:
      if data is not None:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
      else:
        tar.addfile(info)
  return buf.getvalue()


def _file(name, data):
  return tarfile.TarInfo(name), data


def _link(name, target, kind=tarfile.SYMTYPE):
  info = tarfile.TarInfo(name)
  info.type = kind
  info.linkname = target
  return info, None


def _records():
  return [make_records([j % 10 for j in range(3)], seed=i)[0]
          for i in range(len(BATCH_FILES))]


def _good_files(prefix='cifar-10-batches-bin/'):
  return [_file(prefix + name, data)
          for name, data in zip(BATCH_FILES, _records())]


def _device(name):
  info = tarfile.TarInfo(name)
  info.type = tarfile.CHRTYPE
  info.devmajor, info.devminor = 1, 3
  return info, None


BAD_TARBALLS = {
    # The batches directory itself a dangling link, its files "inside" it.
    'dangling_dir_link': ('cifar-10-batches-bin', [
        _link('cifar-10-batches-bin', '/nonexistent/elsewhere')] +
                          _good_files()),
    'file_link': ('cifar-10-batches-bin/data_batch_1.bin', _good_files()[1:] + [
        _link('cifar-10-batches-bin/data_batch_1.bin', '/etc/passwd')]),
    'hard_link': ('cifar-10-batches-bin/data_batch_1.bin', _good_files()[1:] + [
        _link('cifar-10-batches-bin/data_batch_1.bin',
              'cifar-10-batches-bin/test_batch.bin', tarfile.LNKTYPE)]),
    'device': ('cifar-10-batches-bin/null', _good_files() + [
        _device('cifar-10-batches-bin/null')]),
    'dot_dot': ('cifar-10-batches-bin/../../escaped', _good_files() + [
        _file('cifar-10-batches-bin/../../escaped', b'x')]),
}


class _Handler(BaseHTTPRequestHandler):
  """Serves server.routes: bytes, ('redirect', to) or ('trickle', n)."""

  def do_GET(self):
    route = self.server.routes.get(self.path)
    if route is None:
      self.send_error(404, 'Not Found')
    elif isinstance(route, tuple) and route[0] == 'redirect':
      self.send_response(302)
      self.send_header('Location', route[1])
      self.end_headers()
    elif isinstance(route, tuple) and route[0] == 'trickle':
      self.send_response(200)
      self.send_header('Content-Length', str(route[1]))
      self.end_headers()
      try:
        for _ in range(route[1]):
          if self.server.stopping:
            break
          self.wfile.write(b'x')
          self.wfile.flush()
          time.sleep(0.5)
      except (IOError, OSError):
        pass
    else:
      self.send_response(200)
      self.send_header('Content-Length', str(len(route)))
      self.end_headers()
      self.wfile.write(route)

  def log_message(self, *args):
    pass


@pytest.fixture
def server():
  httpd = ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
  httpd.daemon_threads = True
  httpd.stopping = False
  httpd.routes = {}
  thread = threading.Thread(target=httpd.serve_forever)
  thread.daemon = True
  thread.start()
  httpd.url = 'http://127.0.0.1:%d' % httpd.server_port
  yield httpd
  httpd.stopping = True
  httpd.shutdown()
  httpd.server_close()


@pytest.mark.parametrize('case', sorted(BAD_TARBALLS))
def test_tarball_with_unsafe_member_is_refused(tmp_path, server, case):
  member, entries = BAD_TARBALLS[case]
  body = _tarball(entries)
  server.routes['/bad.tar.gz'] = body
  data_dir = tmp_path / 'data'
  with pytest.raises(DownloadError) as info:
    download.maybe_download_and_extract(
        str(data_dir), url=server.url + '/bad.tar.gz',
        expected_md5=hashlib.md5(body).hexdigest())
  message = str(info.value)
  assert '\n' not in message
  assert 'refusing to unpack member %s' % member in message, message
  assert not data_dir.exists()   # nothing left behind, not even the dir
  assert not os.path.exists(str(tmp_path / 'escaped'))
  assert os.listdir(str(tmp_path)) == []


def test_good_tarball_still_unpacks(tmp_path, server):
  body = _tarball(_good_files())
  server.routes['/good.tar.gz'] = body
  data_dir = tmp_path / 'data'
  download.maybe_download_and_extract(
      str(data_dir), url=server.url + '/good.tar.gz',
      expected_md5=hashlib.md5(body).hexdigest())
  assert sorted(os.listdir(str(data_dir / 'cifar-10-batches-bin'))) == sorted(
      BATCH_FILES)


def test_download_failures_each_in_one_line(tmp_path, server):
  server.routes['/loop'] = ('redirect', '/loop')
  server.routes['/wrong.tar.gz'] = b'not the data' * 100
  for route, words in [
      ('/loop', ['redirect', 'infinite loop']),
      ('/missing.tar.gz', ['HTTP error 404']),
      ('/wrong.tar.gz', ['checksum mismatch', 'check --data_url',
                         'trusted copy by hand', 'skips the download'])]:
    data_dir = tmp_path / 'data'
    url = server.url + route
    result = run_script('cifar10_train.py', '--data_dir', str(data_dir),
                        '--train_dir', str(tmp_path / 'train'),
                        '--data_url', url, check=False)
    line = _one_error_line(result, 'cifar10_train.py')
    assert line.count(url) == 1, line
    for word in words + ['could not be fetched', 'unpack it into %s'
                         % data_dir, '--data_dir=%s' % data_dir]:
      assert word in line, line
    assert not os.path.exists(str(data_dir)) and not os.path.exists(
        str(tmp_path / 'train'))


def test_slow_download_shows_progress_and_meets_its_deadline(tmp_path,
                                                             server):
  server.routes['/slow.tar.gz'] = ('trickle', 1000)
  data_dir = tmp_path / 'data'
  start = time.time()
  result = run_script('cifar10_train.py', '--data_dir', str(data_dir),
                      '--train_dir', str(tmp_path / 'train'),
                      '--data_url', server.url + '/slow.tar.gz',
                      '--download_deadline_secs=7', check=False)
  assert time.time() - start < 60
  progress = [l for l in result.stderr.splitlines() if l.startswith('>>')]
  assert progress and re.match(
      r'>> Downloading cifar-10-binary.tar.gz: \d+ of 1000 bytes', progress[0])
  errors = [l for l in result.stderr.splitlines() if not l.startswith('>>')]
  assert result.returncode == 1 and len(errors) == 1, result.stderr
  assert 'not finished after 7 s' in errors[0]
  assert not data_dir.exists()


def test_data_dir_with_data_is_not_downloaded(tmp_path, server):
  # A present data set never touches the network, even a broken one.
  data_dir = tmp_path / 'data'
  write_dataset(data_dir)
  before = _tree(data_dir)
  download.maybe_download_and_extract(str(data_dir),
                                     url=server.url + '/missing.tar.gz')
  assert _tree(data_dir) == before
