"""Copies of the data put into --data_dir by hand whose bytes are not the
official file's (a mirror's re-compressed tarball or .gz files).

Their content is checked as an unpacked copy's would be and used with a
one-line note, or refused with one line naming the file; they are never
downloaded over. The copies are written here; a real HTTP server on
127.0.0.1 (fakes.DownloadServer) is the URL, to show nothing is fetched.
"""
import gzip
import io
import os

import pytest

from conftest import run_script
import fakes
from cifar10lib.base.errors import DownloadError
from cifar10lib.data import datasets
from cifar10lib.data import download

MEMBERS = fakes.dataset_members(train_per_file=3, test_records=3)


def _recompressed(data):
  """data's gzip stream inflated and compressed again at another level and
  time: the same content, other bytes (as a mirror's copy may be)."""
  out = io.BytesIO()
  with gzip.GzipFile(fileobj=out, mode='wb', compresslevel=1, mtime=1) as f:
    f.write(gzip.decompress(data))
  return out.getvalue()


def test_recompressed_cifar_tarball_is_checked_and_used(download_server,
                                                        tmp_path, capsys):
  data_dir = tmp_path / 'data'
  data_dir.mkdir()
  official = fakes.tarball(MEMBERS)
  copy = _recompressed(official)
  assert fakes.md5(copy) != fakes.md5(official)
  (data_dir / 'cifar-10-binary.tar.gz').write_bytes(copy)
  before = len(download_server.requests)
  download.maybe_download_and_extract(
      str(data_dir), download_server.base + '/official.tar.gz',
      expected_md5=fakes.md5(official))
  assert len(download_server.requests) == before
  for member, data in MEMBERS.items():
    assert (data_dir / member).read_bytes() == data
  # The user's copy stays as it was.
  assert (data_dir / 'cifar-10-binary.tar.gz').read_bytes() == copy
  note = capsys.readouterr().out.strip().splitlines()
  assert len(note) == 1
  assert note[0].startswith('Note: %s is not the official file (MD5 %s, '
                            'official %s)' % (
                                data_dir / 'cifar-10-binary.tar.gz',
                                fakes.md5(copy), fakes.md5(official)))
  assert 'so it is used' in note[0]


@pytest.mark.parametrize('content, problem', [
    (b'not a tarball\n' * 50, 'not a readable gzip tar file'),
    (fakes.tarball(dict(MEMBERS, **{
        'cifar-10-batches-bin/test_batch.bin': b'x' * 100})),
     'cifar-10-batches-bin/test_batch.bin: size 100 bytes'),
], ids=['not-gzip', 'bad-records'])  # the same ids in every xdist worker
def test_bad_cifar_tarball_is_refused_naming_it(download_server, tmp_path,
                                                content, problem):
  data_dir = tmp_path / 'data'
  data_dir.mkdir()
  tarball = data_dir / 'cifar-10-binary.tar.gz'
  tarball.write_bytes(content)
  before = len(download_server.requests)
  with pytest.raises(DownloadError) as info:
    download.maybe_download_and_extract(
        str(data_dir), download_server.base + '/official.tar.gz')
  message = str(info.value)
  assert '\n' not in message
  assert '%s (MD5 %s, not the official %s), already there, cannot be used' % (
      tarball, fakes.md5(content), datasets.CIFAR10.md5) in message
  assert problem in message
  assert 'delete it to have it downloaded' in message
  assert 'could not be fetched' not in message
  assert len(download_server.requests) == before
  assert sorted(os.listdir(str(data_dir))) == ['cifar-10-binary.tar.gz']
  assert tarball.read_bytes() == content


def test_mnist_gz_files_with_other_md5s_are_checked_and_used(
    download_server, tmp_path, capsys):
  data_dir = tmp_path / 'data'
  data = fakes.write_idx(data_dir, train=30, test=20, gz=True)
  before = len(download_server.requests)
  download.maybe_download_and_extract(
      str(data_dir), download_server.base + '/none/', ds=datasets.MNIST)
  assert len(download_server.requests) == before
  with open(str(data_dir / 'mnist' / 't10k-labels-idx1-ubyte'), 'rb') as f:
    assert f.read()[8:] == data['test'][0].tobytes()
  notes = capsys.readouterr().out.strip().splitlines()
  assert len(notes) == 4
  for line, name in zip(notes, datasets.MNIST_FILES):
    assert line.startswith('Note: %s is not the official file' % (
        data_dir / name))
    assert datasets.MNIST_FILES[name] in line


def test_mnist_gz_with_bad_content_is_refused_naming_it(download_server,
                                                        tmp_path):
  data_dir = tmp_path / 'data'
  fakes.write_idx(data_dir, train=30, test=20, gz=True)
  bad = data_dir / 'train-labels-idx1-ubyte.gz'
  with gzip.open(str(bad), 'wb') as f:
    f.write(b'\x00\x00\x08\x01' + b'\x00\x00\x00\x07' + b'\x01' * 7)
  result = run_script('cifar10_train.py', '--dataset=mnist', '--data_dir',
                      str(data_dir), '--data_url',
                      download_server.base + '/none/', '--train_dir',
                      str(tmp_path / 'train'), '--max_steps', '1',
                      check=False)
  assert result.returncode == 1
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1, result.stderr
  assert str(bad) in lines[0] and 'cannot be used' in lines[0]
  assert 'train-labels-idx1-ubyte: holds 7 labels' in lines[0]
  assert 'could not be fetched' not in lines[0]
  assert not (data_dir / 'mnist').exists()
  assert not (tmp_path / 'train').exists()
