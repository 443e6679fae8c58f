"""Getting the data: cifar10.maybe_download_and_extract against a real local
HTTP server, and the official sources it fetches from by default.

The server (fakes.DownloadServer) runs in a thread on 127.0.0.1 and serves
tarballs the tests build; it counts requests, so a test can tell whether
anything was fetched. Then what a download must refuse or survive: tarballs
with links, devices or paths outside their directory, redirect loops,
servers that answer wrongly or trickle, each in one line.
"""
import hashlib
import io
import os
import re
import tarfile
import time

import pytest

from conftest import one_error_line, run_script, snapshot
from cifar10lib.training import cifar10
import fakes
from fakes import make_records, write_dataset
from cifar10lib.base import errors
from cifar10lib.base.errors import DownloadError
from cifar10lib.data import datasets
from cifar10lib.data import download

TRUNCATED_PREFIX = '/truncated/'
MISSING_BYTES = 5000   # announced in Content-Length but never sent

# Three records a file: the download's cost is not what is tested.
GOOD_FILES = fakes.dataset_members(train_per_file=3, test_records=3)
GOOD = fakes.tarball(GOOD_FILES)
GOOD_MD5 = fakes.md5(GOOD)
NOT_GZIP = b'this is not a gzip file\n' * 200
NO_BATCHES_DIR = fakes.tarball(fakes.dataset_members(
    'some-other-dir', train_per_file=3, test_records=3))
BAD_RECORDS = fakes.tarball(dict(
    GOOD_FILES, **{'cifar-10-batches-bin/test_batch.bin': b'x' * 100}))


@pytest.fixture(scope='module')
def server(download_server):
  """The download server, serving the tarballs above."""
  download_server.serve('/good.tar.gz', GOOD)
  download_server.serve(TRUNCATED_PREFIX + 'good.tar.gz', GOOD,
                        announced=len(GOOD) + MISSING_BYTES)
  download_server.serve('/not-gzip.tar.gz', NOT_GZIP)
  download_server.serve('/no-dir.tar.gz', NO_BATCHES_DIR)
  download_server.serve('/bad-records.tar.gz', BAD_RECORDS)
  return download_server


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
                                     expected_md5=GOOD_MD5)
  assert server.requests[before:] == ['/good.tar.gz']
  for member, data in GOOD_FILES.items():
    with open(os.path.join(data_dir, member), 'rb') as f:
      assert f.read() == data
  with open(os.path.join(data_dir, datasets.CIFAR10.tarball), 'rb') as f:
    assert f.read() == GOOD
  assert _leftovers(data_dir) == []


def test_present_data_is_not_fetched_again(server, tmp_path):
  data_dir = str(tmp_path / 'data')
  url = server.base + '/good.tar.gz'
  cifar10.maybe_download_and_extract(data_dir, url, expected_md5=GOOD_MD5)
  count = len(server.requests)
  cifar10.maybe_download_and_extract(data_dir, url, expected_md5=GOOD_MD5)
  # Extracted data present: a URL that would fail is not even tried.
  cifar10.maybe_download_and_extract(data_dir, server.base + '/missing.tar.gz',
                                     expected_md5=GOOD_MD5)
  assert len(server.requests) == count
  # A verified tarball without its extracted data is unpacked, not fetched.
  batches = os.path.join(data_dir, 'cifar-10-batches-bin')
  for name in os.listdir(batches):
    os.remove(os.path.join(batches, name))
  os.rmdir(batches)
  cifar10.maybe_download_and_extract(data_dir, url, expected_md5=GOOD_MD5)
  assert len(server.requests) == count
  assert sorted(os.listdir(batches)) == sorted(
      os.path.basename(member) for member in GOOD_FILES)


def test_url_can_come_from_the_environment(server, tmp_path, monkeypatch):
  monkeypatch.setenv('CIFAR10_DATA_URL', server.base + '/good.tar.gz')
  data_dir = str(tmp_path / 'data')
  before = len(server.requests)
  cifar10.maybe_download_and_extract(data_dir, expected_md5=GOOD_MD5)
  assert server.requests[before:] == ['/good.tar.gz']
  assert os.path.isdir(os.path.join(data_dir, 'cifar-10-batches-bin'))


# (path served, MD5 the test expects, words the error must hold)
FAILURES = {
    'checksum': ('/good.tar.gz', '0' * 32, 'checksum mismatch'),
    'truncated': (TRUNCATED_PREFIX + 'good.tar.gz', GOOD_MD5,
                  'truncated'),
    'not-found': ('/missing.tar.gz', GOOD_MD5, '404'),
    'not-gzip': ('/not-gzip.tar.gz', fakes.md5(NOT_GZIP),
                 'not a readable gzip'),
    'no-batches-dir': ('/no-dir.tar.gz', fakes.md5(NO_BATCHES_DIR),
                       'no cifar-10-batches-bin/'),
    'bad-records': ('/bad-records.tar.gz', fakes.md5(BAD_RECORDS),
                    'cifar-10-binary.tar.gz: '
                    'cifar-10-batches-bin/test_batch.bin: size 100 bytes'),
}


@pytest.mark.parametrize('kind', sorted(FAILURES))
def test_failed_download_is_one_clear_error_and_leaves_nothing(server,
                                                               tmp_path, kind):
  path, md5, words = FAILURES[kind]
  data_dir = str(tmp_path / 'data')
  url = server.base + path
  with pytest.raises(errors.DownloadError) as info:
    cifar10.maybe_download_and_extract(data_dir, url, expected_md5=md5)
  message = str(info.value)
  assert '\n' not in message
  assert words in message
  assert data_dir in message and url in message and 'by hand' in message
  assert isinstance(info.value, errors.DataError)
  # No extracted data, no tarball under its final name (not even a verified
  # one that would not unpack), no temporary file.
  assert _contents(data_dir) == []


def test_train_script_without_data_says_how_to_get_it(server, tmp_path):
  data_dir = str(tmp_path / 'new-data')
  url = server.dead_url
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


def test_download_of_cifar100_uses_its_own_directory_and_tarball(server,
                                                                 tmp_path):
  tarball = fakes.tarball(fakes.dataset_members(
      fmt=fakes.CIFAR100, train_per_file=3, test_records=3))
  server.serve('/cifar-100-binary.tar.gz', tarball)
  data_dir = str(tmp_path / 'data')
  ds = datasets.CIFAR100
  cifar10.maybe_download_and_extract(
      data_dir, server.base + '/cifar-100-binary.tar.gz',
      expected_md5=fakes.md5(tarball), ds=ds)
  assert _contents(data_dir) == ['cifar-100-binary', 'cifar-100-binary.tar.gz']
  assert _contents(os.path.join(data_dir, 'cifar-100-binary')) == [
      'coarse_label_names.txt', 'fine_label_names.txt', 'test.bin', 'train.bin']
  assert datasets.count_examples(
      datasets.data_files(data_dir, True, ds), ds) == 3
  # Its own checksum, not CIFAR-10's, guards it: the default is the official.
  other = str(tmp_path / 'other')
  with pytest.raises(errors.DownloadError, match='checksum mismatch, MD5 '
                     '%s, expected %s' % (fakes.md5(tarball), ds.md5)):
    cifar10.maybe_download_and_extract(
        other, server.base + '/cifar-100-binary.tar.gz', ds=ds)
  assert not os.path.exists(other)


def test_cifar100_source_is_the_official_one():
  assert datasets.dataset('cifar100').url == (
      'https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz')
  assert datasets.dataset('cifar100').md5 == (
      '03b5dce01913d631647c71ecec9e9cb8')
  assert datasets.dataset('cifar100', 'coarse').num_classes == 20
  assert datasets.dataset('cifar10') is (
      datasets.CIFAR10)


# --- Hostile tarballs, redirects, slow and failing servers.

BATCH_FILES = ['data_batch_%d.bin' % i for i in range(1, 6)] + [
    'test_batch.bin']



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


@pytest.mark.parametrize('case', sorted(BAD_TARBALLS))
def test_tarball_with_unsafe_member_is_refused(tmp_path, server, case):
  member, entries = BAD_TARBALLS[case]
  body = _tarball(entries)
  server.serve('/bad.tar.gz', body)
  data_dir = tmp_path / 'data'
  with pytest.raises(DownloadError) as info:
    download.maybe_download_and_extract(
        str(data_dir), url=server.url('/bad.tar.gz'),
        expected_md5=hashlib.md5(body).hexdigest())
  message = str(info.value)
  assert '\n' not in message
  assert 'refusing to unpack member %s' % member in message, message
  assert not data_dir.exists()   # nothing left behind, not even the dir
  assert not os.path.exists(str(tmp_path / 'escaped'))
  assert os.listdir(str(tmp_path)) == []


def test_good_tarball_still_unpacks(tmp_path, server):
  body = _tarball(_good_files())
  server.serve('/also-good.tar.gz', body)
  data_dir = tmp_path / 'data'
  download.maybe_download_and_extract(
      str(data_dir), url=server.url('/also-good.tar.gz'),
      expected_md5=hashlib.md5(body).hexdigest())
  assert sorted(os.listdir(str(data_dir / 'cifar-10-batches-bin'))) == sorted(
      BATCH_FILES)


def test_download_failures_each_in_one_line(tmp_path, server):
  server.redirect('/loop', '/loop')
  server.serve('/wrong.tar.gz', b'not the data' * 100)
  for route, words in [
      ('/loop', ['redirect', 'infinite loop']),
      ('/missing.tar.gz', ['HTTP error 404']),
      ('/wrong.tar.gz', ['checksum mismatch', 'check --data_url',
                         'trusted copy by hand', 'skips the download'])]:
    data_dir = tmp_path / 'data'
    url = server.url(route)
    result = run_script('cifar10_train.py', '--data_dir', str(data_dir),
                        '--train_dir', str(tmp_path / 'train'),
                        '--data_url', url, check=False)
    line = one_error_line(result, 'cifar10_train.py', status=1)
    assert line.count(url) == 1, line
    for word in words + ['could not be fetched', 'unpack it into %s'
                         % data_dir, '--data_dir=%s' % data_dir]:
      assert word in line, line
    assert not os.path.exists(str(data_dir)) and not os.path.exists(
        str(tmp_path / 'train'))


def test_slow_download_shows_progress_and_meets_its_deadline(tmp_path,
                                                             server):
  server.serve_slowly('/slow.tar.gz', 1000)
  data_dir = tmp_path / 'data'
  start = time.time()
  result = run_script('cifar10_train.py', '--data_dir', str(data_dir),
                      '--train_dir', str(tmp_path / 'train'),
                      '--data_url', server.url('/slow.tar.gz'),
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
  before = snapshot(data_dir)
  download.maybe_download_and_extract(str(data_dir),
                                     url=server.url('/missing.tar.gz'))
  assert snapshot(data_dir) == before
