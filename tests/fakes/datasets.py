"""Fake data sets in the published formats: records, files, directories.

A format (CIFAR10, CIFAR100) names a data set's directory and files and lays
out its records; `records` makes records in memory, `write_records` writes
one file of them and `write_dataset` a whole data directory, every one of
them through the format's `encode`. Pixels are random, learnable (each class
its own mean colour), grey (three equal channels) or given. A format of
another layout, such as MNIST's IDX files (images and labels in separate
files, 28x28x1), goes beside CifarFormat with the same attributes and its own
`write(directory, name, records)`; the writers below then take it unchanged.
"""
import collections
import os

import numpy as np


class CifarFormat(object):
  """A CIFAR binary data set: records of label bytes, then depth-major pixels.

  label_classes holds each label byte's number of classes: (10,) for
  CIFAR-10, (20, 100) for CIFAR-100's coarse and fine labels. label_names maps
  each file naming classes (one per line) to the names it holds.
  """
  image_shape = (32, 32, 3)

  def __init__(self, batches_dir, label_classes, train_files, test_files,
               label_names):
    self.batches_dir = batches_dir
    self.label_classes = tuple(label_classes)
    self.train_files = list(train_files)
    self.test_files = list(test_files)
    self.label_names = dict(label_names)

  @property
  def label_bytes(self):
    return len(self.label_classes)

  @property
  def record_bytes(self):
    return self.label_bytes + int(np.prod(self.image_shape))

  def random_labels(self, rng, count):
    """count random labels: [count], or [count, label bytes] for several."""
    columns = [rng.randint(0, n, size=count) for n in self.label_classes]
    return columns[0] if len(columns) == 1 else np.stack(columns, axis=1)

  def encode(self, labels, pixels):
    """The bytes of records with these labels and [n, 32, 32, 3] pixels."""
    labels = np.asarray(labels, dtype=np.uint8).reshape(len(pixels), -1)
    assert labels.shape[1] == self.label_bytes, labels.shape
    depth_major = np.asarray(pixels, np.uint8).transpose(0, 3, 1, 2).reshape(
        len(pixels), -1)
    return np.concatenate([labels, depth_major], axis=1).tobytes()

  def write(self, directory, name, records):
    """Writes records to directory/name; returns [the path written]."""
    path = os.path.join(str(directory), name)
    with open(path, 'wb') as f:
      f.write(records.data)
    return [path]


CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog',
                   'frog', 'horse', 'ship', 'truck']
CIFAR10 = CifarFormat(
    'cifar-10-batches-bin', (10,),
    ['data_batch_%d.bin' % i for i in range(1, 6)], ['test_batch.bin'],
    {'batches.meta.txt': CIFAR10_CLASSES})
CIFAR100 = CifarFormat(
    'cifar-100-binary', (20, 100), ['train.bin'], ['test.bin'],
    {'coarse_label_names.txt': ['coarse%d' % i for i in range(20)],
     'fine_label_names.txt': ['fine%d' % i for i in range(100)]})
RECORD_BYTES = CIFAR10.record_bytes   # 3,073


class Records(collections.namedtuple('Records', 'labels pixels data')):
  """Records made by `records`: labels, [n, 32, 32, 3] uint8 pixels, bytes."""


def fake_pixels(labels, seed=0, style='random', fmt=CIFAR10):
  """Pixels for records with these labels, drawn from RandomState(seed).

  style: 'random' (uniform bytes), 'learnable' (a quarter noise, three
  quarters the class's own colour: a few steps of training tell the classes
  apart) or 'grey' (uniform bytes, the same in the three channels). A
  CIFAR-100 record's class is its last (fine) label.
  """
  rng = np.random.RandomState(seed)
  labels = np.asarray(labels)
  classes = labels if labels.ndim == 1 else labels[:, -1]
  n = len(labels)
  if style == 'grey':
    grey = rng.randint(0, 256, size=(n,) + fmt.image_shape[:2])
    return np.repeat(grey[..., None], fmt.image_shape[2], axis=-1).astype(
        np.uint8)
  pixels = rng.randint(0, 256, size=(n,) + fmt.image_shape).astype(np.uint8)
  if style == 'learnable':
    base = (np.arange(fmt.label_classes[-1])[:, None] *
            np.array([25, 70, 130]) % 256)
    pixels = (pixels // 4 + base[classes][:, None, None, :] * 3 // 4).astype(
        np.uint8)
  elif style != 'random':
    raise ValueError('unknown pixel style %r' % style)
  return pixels


def records(labels, seed=0, style='random', pixels=None, fmt=CIFAR10):
  """Records with these labels: the given pixels, or fake_pixels' of style."""
  labels = np.asarray(labels)
  if pixels is None:
    pixels = fake_pixels(labels, seed, style, fmt)
  pixels = np.asarray(pixels, dtype=np.uint8)
  return Records(labels, pixels, fmt.encode(labels, pixels))


def make_records(labels, seed=0, learnable=False):
  """(bytes, pixels) of CIFAR-10 records with these labels."""
  made = records(labels, seed, 'learnable' if learnable else 'random')
  return made.data, made.pixels


def write_records(path, labels, seed=0, style='random', pixels=None,
                  fmt=CIFAR10):
  """Writes one file of records (see `records`) at path; returns them."""
  made = records(labels, seed, style, pixels, fmt)
  directory, name = os.path.split(str(path))
  if directory and not os.path.isdir(directory):
    os.makedirs(directory)
  fmt.write(directory, name, made)
  return made


def write_label_names(data_dir, names=None, fmt=CIFAR10):
  """Writes fmt's class-name files (or, for one file, the given names)."""
  batches = os.path.join(str(data_dir), fmt.batches_dir)
  if not os.path.isdir(batches):
    os.makedirs(batches)
  for filename, default in sorted(fmt.label_names.items()):
    with open(os.path.join(batches, filename), 'w') as f:
      f.write('\n'.join(names or default) + '\n')


def dataset_records(train_per_file=60, test_records=100, seed=0,
                    style='random', test_labels=None, fmt=CIFAR10):
  """[(file name, Records)] of a data set: fmt's training files, then test.

  Labels come from RandomState(seed) (test_labels, when given, are the test
  file's); each file's pixels from their own seed.
  """
  rng = np.random.RandomState(seed)
  out = []
  for i, name in enumerate(fmt.train_files):
    labels = fmt.random_labels(rng, train_per_file)
    out.append((name, records(labels, seed * 100 + i, style, fmt=fmt)))
  for i, name in enumerate(fmt.test_files):
    labels = test_labels
    if labels is None:
      labels = fmt.random_labels(rng, test_records)
    out.append((name, records(labels, seed * 100 + 99 - i, style, fmt=fmt)))
  return out


def write_dataset(data_dir, train_per_file=60, test_records=100, seed=0,
                  learnable=False, test_labels=None, fmt=CIFAR10,
                  style=None):
  """Writes data_dir/<fmt.batches_dir>/: every file of fmt, and class names.

  Returns {'train': [Records of each training file], 'test': Records}.
  """
  batches = os.path.join(str(data_dir), fmt.batches_dir)
  if not os.path.isdir(batches):
    os.makedirs(batches)
  style = style or ('learnable' if learnable else 'random')
  out = {'train': []}
  for name, made in dataset_records(train_per_file, test_records, seed, style,
                                    test_labels, fmt):
    fmt.write(batches, name, made)
    if name in fmt.train_files:
      out['train'].append(made)
    else:
      out['test'] = made
  write_label_names(data_dir, fmt=fmt)
  return out


def all_training_records(written):
  """(labels, pixels) of every training file write_dataset wrote, in order."""
  return (np.concatenate([r.labels for r in written['train']]),
          np.concatenate([r.pixels for r in written['train']]))


def break_file(path, how, record=3, label_byte=0, label=None, fmt=CIFAR10):
  """Damages a data file as a user may find it; returns path.

  how: 'missing' (removed), 'empty' (0 bytes), 'size' (100 stray bytes at
  the end) or 'label' (record's label byte label_byte set to label, by
  default the first value out of range).
  """
  path = str(path)
  if how == 'missing':
    os.remove(path)
  elif how == 'empty':
    open(path, 'wb').close()
  elif how == 'size':
    with open(path, 'ab') as f:
      f.write(b'\0' * 100)
  elif how == 'label':
    if label is None:
      label = fmt.label_classes[label_byte]
    with open(path, 'r+b') as f:
      f.seek(record * fmt.record_bytes + label_byte)
      f.write(bytes([label]))
  else:
    raise ValueError('unknown breakage %r' % how)
  return path
