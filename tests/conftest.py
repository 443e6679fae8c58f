"""Shared fixtures: small CIFAR-10 data sets in the real binary format.

Every test makes its own data, a few hundred records, so the suite needs
neither the network nor the real 170 MB download.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

RECORD_BYTES = 3073
TRAIN_FILES = ['data_batch_%d.bin' % i for i in range(1, 6)]


def make_records(labels, seed=0, learnable=False):
  """Returns (bytes, pixels[n,32,32,3] uint8) for the given labels.

  With learnable=True each class gets its own mean colour, so a few steps of
  training can tell the classes apart.
  """
  rng = np.random.RandomState(seed)
  labels = np.asarray(labels, dtype=np.uint8)
  n = len(labels)
  pixels = rng.randint(0, 256, size=(n, 32, 32, 3)).astype(np.uint8)
  if learnable:
    base = (np.arange(10)[:, None] * np.array([25, 70, 130]) % 256)
    pixels = (pixels // 4 + base[labels][:, None, None, :] * 3 // 4).astype(np.uint8)
  depth_major = pixels.transpose(0, 3, 1, 2).reshape(n, 3072)
  records = np.concatenate([labels[:, None], depth_major], axis=1)
  return records.astype(np.uint8).tobytes(), pixels


def write_dataset(data_dir, train_per_file=60, test_records=100, seed=0,
                  learnable=False, test_labels=None):
  """Writes data_dir/cifar-10-batches-bin/ with five training files and a test file.

  Returns {'train': [(labels, pixels) per file], 'test': (labels, pixels)}.
  """
  batches = os.path.join(str(data_dir), 'cifar-10-batches-bin')
  os.makedirs(batches, exist_ok=True)
  rng = np.random.RandomState(seed)
  out = {'train': []}
  for i, name in enumerate(TRAIN_FILES):
    labels = rng.randint(0, 10, size=train_per_file)
    data, pixels = make_records(labels, seed=seed * 100 + i, learnable=learnable)
    with open(os.path.join(batches, name), 'wb') as f:
      f.write(data)
    out['train'].append((labels, pixels))
  if test_labels is None:
    test_labels = rng.randint(0, 10, size=test_records)
  data, pixels = make_records(test_labels, seed=seed * 100 + 99,
                              learnable=learnable)
  with open(os.path.join(batches, 'test_batch.bin'), 'wb') as f:
    f.write(data)
  out['test'] = (np.asarray(test_labels), pixels)
  with open(os.path.join(batches, 'batches.meta.txt'), 'w') as f:
    f.write('\n'.join(['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog',
                       'frog', 'horse', 'ship', 'truck']) + '\n')
  return out


@pytest.fixture
def data_dir(tmp_path):
  """A small data set: 5 x 60 training records, 100 test records."""
  path = tmp_path / 'data'
  write_dataset(path)
  return str(path)


def run_script(script, *args, timeout=240, env=None, check=True):
  """Runs one of the repository's scripts as a user would; returns the result."""
  full_env = dict(os.environ)
  full_env.update(env or {})
  result = subprocess.run(
      [sys.executable, os.path.join(REPO, script)] + list(args),
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
      timeout=timeout, env=full_env, cwd=REPO)
  if check and result.returncode != 0:
    raise AssertionError('%s %s exited %d\nstdout:\n%s\nstderr:\n%s' % (
        script, ' '.join(args), result.returncode, result.stdout,
        result.stderr))
  return result
