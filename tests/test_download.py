"""Getting the data: cifar10.maybe_download_and_extract against a real local
HTTP server, and the official sources it fetches from by default.

The server (fakes.DownloadServer) runs in a thread on 127.0.0.1 and serves
tarballs the tests build; it counts requests, so a test can tell whether
anything was fetched.
"""
import os

import pytest

from conftest import run_script
from cifar10lib import cifar10
import fakes
from cifar10lib import datasets
from cifar10lib import errors

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
