"""Downloads and unpacks a dataset's tarball, all or nothing.

The bytes go to a temporary file, which becomes the tarball only once
complete and verified against its MD5; it is unpacked into a staging
directory, which becomes the data directory only once every file checks
out. A failed attempt leaves the disk as it was.

MNIST comes as four gzipped IDX files, each with its own MD5: each is
downloaded the same way (from the official location, else a mirror), and
the four are unzipped into a staging directory, which becomes mnist/ once
their headers check out. The verified .gz files stay in the data directory,
as the tarball does, so that an interrupted attempt need not fetch them again.

A tarball or .gz file that the user put in the data directory is never
downloaded over. When its MD5 is not the official one (a mirror's
re-compressed copy holds the same records in other bytes), its content is
checked as an unpacked copy's would be (member paths, record sizes and
labels; IDX headers, counts and labels) and used with a one-line note, or
refused with an error naming the file.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import collections
import gzip
import hashlib
import os
import shutil
import sys
import tarfile
import tempfile
import time

from six.moves import urllib

from cifar10lib.base.errors import DataError
from cifar10lib.base.errors import DownloadError
from cifar10lib.base.errors import UserError
from cifar10lib.data import datasets

DOWNLOAD_TIMEOUT_SECS = 60     # the longest wait for any one read
DOWNLOAD_DEADLINE_SECS = 3600  # the whole download, 170 MB at ~50 kB/s
PROGRESS_SECS = 5              # between progress lines when not on a terminal
URL_VARIABLE = 'CIFAR10_DATA_URL'


def _md5(path):
  digest = hashlib.md5()
  with open(path, 'rb') as f:
    for chunk in iter(lambda: f.read(1 << 20), b''):
      digest.update(chunk)
  return digest.hexdigest()


def _download(url, dest_dir, expected_md5, tarball,
              deadline_secs=DOWNLOAD_DEADLINE_SECS):
  """Downloads url into dest_dir/tarball, verified; returns the path.

  The bytes go to a temporary file first, renamed only once complete and
  verified, so tarball is never a partial or corrupt file; the temporary
  file is removed whatever ends the download, Ctrl-C included. Progress is
  shown as it goes on a terminal, else every PROGRESS_SECS seconds; the
  download is given up after deadline_secs (plus one read's timeout at most).
  """
  final = os.path.join(dest_dir, tarball)
  try:
    fd, part = tempfile.mkstemp(prefix=tarball + '.', suffix='.part',
                                dir=dest_dir)
  except OSError as e:
    raise DownloadError('cannot write in %s: %s' % (dest_dir, e.strerror))
  start = time.time()
  # Else a server that never answers leaves the script silent for a minute.
  print('Downloading %s into %s (given up after %d s: '
        '--download_deadline_secs)' % (url, dest_dir, deadline_secs),
        flush=True)
  try:
    with os.fdopen(fd, 'wb') as out:
      response = urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_SECS)
      expected_size = int(response.headers.get('Content-Length') or 0)
      received = 0
      tty = sys.stderr.isatty()
      shown = start
      # read1 returns what has arrived, so a trickle still meets the deadline.
      for chunk in iter(lambda: response.read1(1 << 16), b''):
        out.write(chunk)
        received += len(chunk)
        now = time.time()
        if now - start > deadline_secs:
          raise DownloadError(
              'download failed: not finished after %d s (got %d of %s '
              'bytes)' % (deadline_secs, received, expected_size or '?'))
        if tty or now - shown >= PROGRESS_SECS:
          shown = now
          sys.stderr.write('%s>> Downloading %s: %d of %s bytes (%.1f%%)%s' % (
              '\r' if tty else '', tarball, received, expected_size or '?',
              100.0 * received / max(expected_size, 1), '' if tty else '\n'))
          sys.stderr.flush()
      if tty:
        sys.stderr.write('\n')
    if expected_size and received != expected_size:
      raise DownloadError('transfer truncated, got %d of %d bytes'
                          % (received, expected_size))
    actual_md5 = _md5(part)
    if actual_md5 != expected_md5:
      raise _ChecksumError('checksum mismatch, MD5 %s, expected %s'
                          % (actual_md5, expected_md5))
    os.rename(part, final)
    print('Successfully downloaded %s (%d bytes).' % (tarball, received))
    return final
  except urllib.error.HTTPError as e:
    # Its `reason` alone ("Not Found") would hide the status code.
    raise DownloadError('download failed: HTTP error %d %s' % (e.code, e.reason))
  except (IOError, OSError, ValueError) as e:
    raise DownloadError('download failed: %s' % getattr(e, 'reason', e))
  finally:
    if os.path.exists(part):
      os.remove(part)


def _check_members(tarball, members, batches_dir):
  """Raises DownloadError unless members are plain files and directories
  under batches_dir/: no links, devices, absolute paths or '..'.

  Python 3.7 has no tarfile extraction filter, so this is checked here
  before anything is extracted; a link in the wrong place would otherwise
  send the files elsewhere or fail half-way.
  """
  for m in members:
    parts = m.name.split('/')
    if (os.path.isabs(m.name) or '..' in parts or
        not (m.isfile() or m.isdir()) or
        (m.name.rstrip('/') == batches_dir and not m.isdir())):
      kind = ('a link' if m.issym() or m.islnk() else
              'not a plain file or directory' if not (m.isfile() or m.isdir())
              else 'outside %s/' % batches_dir if '..' in parts
              else 'not a directory')
      raise DownloadError('%s: refusing to unpack member %s (%s)'
                          % (tarball, m.name, kind))


def _extract(tarball, dest_dir, ds):
  """Unpacks ds.batches_dir from tarball into dest_dir, all or nothing."""
  staging = tempfile.mkdtemp(prefix='.extract-', dir=dest_dir)
  try:
    try:
      with tarfile.open(tarball, 'r:gz') as tar:
        members = [m for m in tar.getmembers()
                   if m.name.split('/')[0] == ds.batches_dir]
        if not members:
          raise DownloadError('%s: holds no %s/ directory'
                              % (tarball, ds.batches_dir))
        _check_members(tarball, members, ds.batches_dir)
        if hasattr(tarfile, 'data_filter'):
          # Python's own check too, where it has one (3.8.17+, 3.11.4+).
          tar.extractall(staging, members, filter='data')
        else:
          tar.extractall(staging, members)
    except (tarfile.TarError, IOError, OSError, EOFError) as e:
      raise DownloadError('%s: not a readable gzip tar file: %s' % (tarball, e))
    try:
      datasets.count_examples(
          datasets.data_files(staging, False, ds) +
          datasets.data_files(staging, True, ds), ds)
    except DataError as e:
      # Name the tarball's member, not the staging copy about to be removed.
      raise DownloadError('%s: %s' % (
          tarball, str(e).replace(staging + os.sep, '')))
    os.rename(os.path.join(staging, ds.batches_dir),
              os.path.join(dest_dir, ds.batches_dir))
  finally:
    shutil.rmtree(staging, ignore_errors=True)


class _ChecksumError(DownloadError):
  """The bytes arrived but are not the expected file."""


class _LocalCopyError(DownloadError):
  """A copy the user put in the data directory cannot be used; the message
  names it and says what to do."""


def _local_copy(path, expected_md5):
  """None when path is absent, else the MD5 it has when not expected_md5
  ('' when it is the official file)."""
  if not os.path.isfile(path):
    return None
  actual = _md5(path)
  return '' if actual == expected_md5 else actual


def _unofficial_note(path, actual_md5, expected_md5, checks):
  print('Note: %s is not the official file (MD5 %s, official %s); its '
        'content passed the checks of an unpacked copy (%s), so it is used.'
        % (path, actual_md5, expected_md5, checks), flush=True)


def _refuse_local(copies, data_dir, ds, problem):
  """Raises _LocalCopyError for copies {path: (its MD5, the official MD5)}."""
  them = 'it' if len(copies) == 1 else 'them'
  raise _LocalCopyError(
      '--data_dir=%s has no %s/, and %s, already there, cannot be used: %s; '
      'replace %s with the official file, or delete %s to have it downloaded'
      % (data_dir, ds.batches_dir, ' and '.join(
          '%s (MD5 %s, not the official %s)' % (path, actual, official)
          for path, (actual, official) in copies.items()), problem, them,
          them))


def _download_any(urls, dest_dir, expected_md5, name, deadline_secs):
  """_download from the first of urls (directories) that works."""
  problems = []
  for base in urls:
    try:
      return _download(base.rstrip('/') + '/' + name, dest_dir, expected_md5,
                       name, deadline_secs)
    except DownloadError as e:
      problems.append('%s: %s' % (name, e))
  raise DownloadError('; '.join(problems))


def _gunzip(path, dest):
  try:
    with gzip.open(path, 'rb') as src, open(dest, 'wb') as out:
      shutil.copyfileobj(src, out, 1 << 20)
  except (IOError, OSError, EOFError) as e:
    raise DownloadError('%s: not a readable gzip file: %s' % (path, e))


def _fetch_gz_files(data_dir, urls, ds, downloaded, deadline_secs):
  """Fetches and unzips ds's gzipped files into data_dir/ds.batches_dir/.

  ds.md5 maps each .gz file to its MD5. A verified .gz already in data_dir
  is used as it is; the paths of those downloaded are appended to
  downloaded. The directory appears whole, or not at all.
  """
  staging = tempfile.mkdtemp(prefix='.extract-', dir=data_dir)
  unofficial = collections.OrderedDict()  # user's .gz files -> their MD5
  try:
    target = os.path.join(staging, ds.batches_dir)
    os.mkdir(target)
    for name, md5 in ds.md5.items():
      path = os.path.join(data_dir, name)
      local = _local_copy(path, md5)
      if local is None:
        downloaded.append(_download_any(urls, data_dir, md5, name,
                                        deadline_secs))
      elif local:
        unofficial[path] = local
      try:
        _gunzip(path, os.path.join(target, name[:-len('.gz')]))
      except DownloadError as e:
        if path in unofficial:
          _refuse_local({path: (unofficial[path], md5)}, data_dir, ds,
                        str(e).split(': ', 1)[1])
        raise
    try:
      datasets.count_examples(
          datasets.data_files(staging, False, ds) +
          datasets.data_files(staging, True, ds), ds)
    except DataError as e:
      problem = str(e).replace(target + os.sep, '')
      if unofficial:
        _refuse_local(collections.OrderedDict(
            (path, (actual, ds.md5[os.path.basename(path)]))
            for path, actual in unofficial.items()), data_dir, ds,
                      'unpacked, %s' % problem)
      raise DownloadError(problem)
    for path, actual in unofficial.items():
      _unofficial_note(path, actual, ds.md5[os.path.basename(path)],
                       'IDX headers, sizes, counts and labels')
    os.rename(target, os.path.join(data_dir, ds.batches_dir))
  finally:
    shutil.rmtree(staging, ignore_errors=True)


def _fetch_tarball(data_dir, url, expected_md5, ds, downloaded,
                   deadline_secs):
  """Unpacks ds.tarball into data_dir, fetching it first unless a verified
  copy is there; the path downloaded is appended to downloaded."""
  tarball = os.path.join(data_dir, ds.tarball)
  local = _local_copy(tarball, expected_md5)
  if local is None:
    tarball = _download(url, data_dir, expected_md5, ds.tarball,
                        deadline_secs)
    downloaded.append(tarball)
  try:
    _extract(tarball, data_dir, ds)
  except DownloadError as e:
    if local:
      _refuse_local({tarball: (local, expected_md5)}, data_dir, ds,
                    str(e).replace(tarball + ': ', ''))
    raise
  if local:
    _unofficial_note(tarball, local, expected_md5,
                     'member paths, record sizes and labels')


def maybe_download_and_extract(data_dir=datasets.DATA_DIR, url=None,
                               expected_md5=None, ds=datasets.CIFAR10,
                               deadline_secs=DOWNLOAD_DEADLINE_SECS):
  """Makes sure data_dir holds ds's directory, downloading it if needed.

  Present data is left alone. A verified tarball already in data_dir is
  unpacked without downloading it again. Raises DownloadError (one line naming
  the directory, the URL and the manual way) when the data cannot be had.
  url defaults to data_url(ds), expected_md5 to ds's checksum; the download
  is given up after deadline_secs. For data that comes as gzipped files
  (MNIST), url is the directory holding them (default: ds.url, then its
  mirrors) and expected_md5 is ignored. Whatever ends an attempt (an error,
  Ctrl-C), it leaves the disk as it was.
  """
  # A URL given is the only one tried; by default, ds's own, then its mirrors.
  urls = [url] if url else [data_url(ds)] + list(ds.mirrors)
  url = urls[0]
  expected_md5 = expected_md5 or ds.md5
  batches = os.path.join(data_dir, ds.batches_dir)
  if os.path.isdir(batches):
    return
  created = _missing_dirs(data_dir)
  downloaded = []
  done = False
  try:
    try:
      if not os.path.isdir(data_dir):
        os.makedirs(data_dir)
    except OSError as e:
      raise DownloadError('cannot create the directory: %s' % e.strerror)
    if not os.access(data_dir, os.W_OK | os.X_OK):
      # os.access sees a read-only file system even for root.
      raise UserError(
          '--data_dir=%s has no %s/ and the directory cannot be written, so '
          'the data cannot be downloaded there: put %s/ there by hand, or '
          'choose another --data_dir' % (data_dir, ds.batches_dir,
                                         ds.batches_dir))
    if ds.tarball:
      _fetch_tarball(data_dir, url, expected_md5, ds, downloaded,
                     deadline_secs)
    else:
      _fetch_gz_files(data_dir, urls, ds, downloaded, deadline_secs)
    done = True
  except _LocalCopyError:
    raise
  except _ChecksumError as e:
    raise DownloadError(
        '--data_dir=%s has no %s/ and it could not be fetched from %s (%s): '
        'the server did not send the genuine %s; check --data_url (or $%s), '
        'or get a trusted copy by hand and unpack it into %s, which skips '
        'the download' % (data_dir, ds.batches_dir, ' or '.join(urls), e,
                          ds.tarball, URL_VARIABLE, data_dir))
  except DownloadError as e:
    by_hand = ('download it by hand and unpack it into %s' % data_dir
               if ds.tarball else 'download its files %s by hand into %s'
               % (', '.join(ds.md5), data_dir))
    raise DownloadError(
        '--data_dir=%s has no %s/ and it could not be fetched from %s (%s); '
        '%s' % (data_dir, ds.batches_dir, ' or '.join(urls), e, by_hand))
  finally:
    if not done:
      # A failed attempt leaves the disk as it was: a tarball that cannot be
      # unpacked would only make the next attempt fail without downloading.
      for path in downloaded:
        if os.path.exists(path):
          os.remove(path)
      for path in created:
        try:
          os.rmdir(path)
        except OSError:
          pass  # not empty, or never made: not ours to remove


def _missing_dirs(path):
  """path and those of its parents that do not exist yet, deepest first."""
  missing = []
  path = os.path.abspath(path)
  while not os.path.exists(path):
    missing.append(path)
    path = os.path.dirname(path)
  return missing


def data_url(ds):
  """ds's official URL; for CIFAR-10, $CIFAR10_DATA_URL when set."""
  if ds.name == 'cifar10':
    return os.environ.get(URL_VARIABLE) or ds.url
  return ds.url
