"""Tests of cifar10.maybe_download_and_extract against a real local HTTP server.

The server runs in a thread on 127.0.0.1 and serves tarballs the tests build;
it counts requests, so a test can tell whether anything was fetched.
"""
import hashlib
import io
import os
import socket
import tarfile
import threading

from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer

import pytest

from conftest import make_records, run_script
import cifar10

BATCH_FILES = ['data_batch_%d.bin' % i for i in range(1, 6)] + [
    'test_batch.bin']
RECORDS_PER_FILE = 3
TRUNCATED_PREFIX = '/truncated/'
MISSING_BYTES = 5000   # announced in Content-Length but never sent


def _tarball(files):
  """A gzip tarball holding {member name: bytes}; returns its bytes."""
  buf = io.BytesIO()
  with tarfile.open(fileobj=buf, mode='w:gz') as tar:
    for name, data in sorted(files.items()):
      info = tarfile.TarInfo(name)
      info.size = len(data)
      tar.addfile(info, io.BytesIO(data))
  return buf.getvalue()


def _batch_files(directory='cifar-10-batches-bin'):
  files = {}
  for i, name in enumerate(BATCH_FILES):
    data, _ = make_records([(i + j) % 10 for j in range(RECORDS_PER_FILE)],
                           seed=i)
    files[directory + '/' + name] = data
  return files


def _md5(data):
  return hashlib.md5(data).hexdigest()


GOOD_FILES = _batch_files()
GOOD = _tarball(GOOD_FILES)
NOT_GZIP = b'this is not a gzip file\n' * 200
NO_BATCHES_DIR = _tarball(_batch_files('some-other-dir'))
BAD_RECORDS = _tarball(dict(
    _batch_files(), **{'cifar-10-batches-bin/test_batch.bin': b'x' * 100}))


class _Handler(BaseHTTPRequestHandler):
  """Serves server.routes; paths under TRUNCATED_PREFIX end early."""

  def do_GET(self):
    self.server.requests.append(self.path)
    body = self.server.routes.get(self.path)
    if body is None:
      self.send_error(404, 'Not Found')
      return
    length = len(body)
    if self.path.startswith(TRUNCATED_PREFIX):
      length += MISSING_BYTES
    self.send_response(200)
    self.send_header('Content-Type', 'application/gzip')
    self.send_header('Content-Length', str(length))
    self.end_headers()
    self.wfile.write(body)
    self.close_connection = True

  def log_message(self, *args):
    pass


@pytest.fixture(scope='module')
def server():
  httpd = ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
  httpd.daemon_threads = True
  httpd.requests = []
  httpd.routes = {
      '/good.tar.gz': GOOD,
      TRUNCATED_PREFIX + 'good.tar.gz': GOOD,
      '/not-gzip.tar.gz': NOT_GZIP,
      '/no-dir.tar.gz': NO_BATCHES_DIR,
      '/bad-records.tar.gz': BAD_RECORDS,
  }
  httpd.base = 'http://127.0.0.1:%d' % httpd.server_address[1]
  thread = threading.Thread(target=httpd.serve_forever, daemon=True)
  thread.start()
  yield httpd
  httpd.shutdown()
  httpd.server_close()
  thread.join()


def _leftovers(data_dir):
  """Temporary files or directories the download may have left behind."""
  return [n for n in os.listdir(data_dir)
          if n.endswith('.part') or n.startswith('.extract-')]


def _contents(path):
  """The names in directory path; none when it does not exist."""
  return sorted(os.listdir(path)) if os.path.isdir(path) else []


def test_download_fetches_verifies_and_extracts(server, tmp_path):
  data_dir = str(tmp_path / 'data')
  before = len(server.requests)
  cifar10.maybe_download_and_extract(data_dir, server.base + '/good.tar.gz',
                                     expected_md5=_md5(GOOD))
  assert server.requests[before:] == ['/good.tar.gz']
  for member, data in GOOD_FILES.items():
    with open(os.path.join(data_dir, member), 'rb') as f:
      assert f.read() == data
  with open(os.path.join(data_dir, cifar10.TARBALL), 'rb') as f:
    assert f.read() == GOOD
  assert _leftovers(data_dir) == []


def test_present_data_is_not_fetched_again(server, tmp_path):
  data_dir = str(tmp_path / 'data')
  url = server.base + '/good.tar.gz'
  cifar10.maybe_download_and_extract(data_dir, url, expected_md5=_md5(GOOD))
  count = len(server.requests)
  cifar10.maybe_download_and_extract(data_dir, url, expected_md5=_md5(GOOD))
  # Extracted data present: a URL that would fail is not even tried.
  cifar10.maybe_download_and_extract(data_dir, server.base + '/missing.tar.gz',
                                     expected_md5=_md5(GOOD))
  assert len(server.requests) == count
  # A verified tarball without its extracted data is unpacked, not fetched.
  batches = os.path.join(data_dir, 'cifar-10-batches-bin')
  for name in os.listdir(batches):
    os.remove(os.path.join(batches, name))
  os.rmdir(batches)
  cifar10.maybe_download_and_extract(data_dir, url, expected_md5=_md5(GOOD))
  assert len(server.requests) == count
  assert sorted(os.listdir(batches)) == sorted(BATCH_FILES)


def test_url_can_come_from_the_environment(server, tmp_path, monkeypatch):
  monkeypatch.setenv('CIFAR10_DATA_URL', server.base + '/good.tar.gz')
  data_dir = str(tmp_path / 'data')
  before = len(server.requests)
  cifar10.maybe_download_and_extract(data_dir, expected_md5=_md5(GOOD))
  assert server.requests[before:] == ['/good.tar.gz']
  assert os.path.isdir(os.path.join(data_dir, 'cifar-10-batches-bin'))


# (path served, MD5 the test expects, words the error must hold)
FAILURES = {
    'checksum': ('/good.tar.gz', '0' * 32, 'checksum mismatch'),
    'truncated': (TRUNCATED_PREFIX + 'good.tar.gz', _md5(GOOD),
                  'truncated'),
    'not-found': ('/missing.tar.gz', _md5(GOOD), '404'),
    'not-gzip': ('/not-gzip.tar.gz', _md5(NOT_GZIP), 'not a readable gzip'),
    'no-batches-dir': ('/no-dir.tar.gz', _md5(NO_BATCHES_DIR),
                       'no cifar-10-batches-bin/'),
    'bad-records': ('/bad-records.tar.gz', _md5(BAD_RECORDS),
                    'cifar-10-binary.tar.gz: '
                    'cifar-10-batches-bin/test_batch.bin: size 100 bytes'),
}


@pytest.mark.parametrize('kind', sorted(FAILURES))
def test_failed_download_is_one_clear_error_and_leaves_nothing(server,
                                                               tmp_path, kind):
  path, md5, words = FAILURES[kind]
  data_dir = str(tmp_path / 'data')
  url = server.base + path
  with pytest.raises(cifar10.DownloadError) as info:
    cifar10.maybe_download_and_extract(data_dir, url, expected_md5=md5)
  message = str(info.value)
  assert '\n' not in message
  assert words in message
  assert data_dir in message and url in message and 'by hand' in message
  assert isinstance(info.value, cifar10.DataError)
  # No extracted data, no tarball under its final name (not even a verified
  # one that would not unpack), no temporary file.
  assert _contents(data_dir) == []


def _free_port():
  """A port on 127.0.0.1 where, once this returns, nothing listens."""
  sock = socket.socket()
  sock.bind(('127.0.0.1', 0))
  port = sock.getsockname()[1]
  sock.close()
  return port


def test_train_script_without_data_says_how_to_get_it(tmp_path):
  data_dir = str(tmp_path / 'new-data')
  url = 'http://127.0.0.1:%d/x.tar.gz' % _free_port()
  result = run_script('cifar10_train.py', '--data_dir', data_dir,
                      '--data_url', url, '--train_dir', str(tmp_path / 'train'),
                      '--max_steps', '1', check=False)
  assert result.returncode != 0
  assert 'Traceback' not in result.stderr
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1, result.stderr
  assert lines[0].startswith('cifar10_train.py: error: ')
  assert data_dir in lines[0] and url in lines[0] and 'by hand' in lines[0]
  assert _contents(data_dir) == []


def _cifar100_files():
  """cifar-100-binary/ as the official tarball lays it out (two label bytes)."""
  files = {}
  for name in ('train.bin', 'test.bin'):
    data, _ = make_records([0, 1, 2])
    records = bytearray()
    for i in range(3):
      record = data[i * 3073:(i + 1) * 3073]
      records += bytes([i]) + bytes([90 + i]) + record[1:]  # coarse, fine
    files['cifar-100-binary/' + name] = bytes(records)
  files['cifar-100-binary/fine_label_names.txt'] = b'apple\n' * 100
  files['cifar-100-binary/coarse_label_names.txt'] = b'fruit\n' * 20
  return files


def test_download_of_cifar100_uses_its_own_directory_and_tarball(server,
                                                                 tmp_path):
  tarball = _tarball(_cifar100_files())
  server.routes['/cifar-100-binary.tar.gz'] = tarball
  data_dir = str(tmp_path / 'data')
  ds = cifar10.cifar10_input.CIFAR100
  cifar10.maybe_download_and_extract(
      data_dir, server.base + '/cifar-100-binary.tar.gz',
      expected_md5=_md5(tarball), ds=ds)
  assert _contents(data_dir) == ['cifar-100-binary', 'cifar-100-binary.tar.gz']
  assert _contents(os.path.join(data_dir, 'cifar-100-binary')) == [
      'coarse_label_names.txt', 'fine_label_names.txt', 'test.bin', 'train.bin']
  assert cifar10.cifar10_input.count_examples(
      cifar10.cifar10_input.data_files(data_dir, True, ds), ds) == 3
  # Its own checksum, not CIFAR-10's, guards it: the default is the official.
  other = str(tmp_path / 'other')
  with pytest.raises(cifar10.DownloadError, match='checksum mismatch, MD5 '
                     '%s, expected %s' % (_md5(tarball), ds.md5)):
    cifar10.maybe_download_and_extract(
        other, server.base + '/cifar-100-binary.tar.gz', ds=ds)
  assert not os.path.exists(other)
