"""The datasets the pipeline reads: where their files are, how to check them.

A `Dataset` describes one binary layout (CIFAR-10, CIFAR-100 with its fine or
coarse labels): its directory and files, its label bytes, where to download
it from. `split` picks the records of one split of a data directory
(training, a validation hold-out at the end of the training files, test).

The CIFAR binary format: every record is its label byte(s) followed by 3,072
pixel bytes, stored depth-major (1,024 red, then green, then blue, each 32x32
row-major). Files have no header or footer, so the number of records in a
file is its size divided by the record size: it is read from the files,
never assumed.

MNIST comes as IDX files (idx.py): one file of 28x28 grey images after a
16-byte header, and a separate file of their labels. Its records are the
784 pixel bytes alone; the label of record i is byte i of the label file.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import collections
import os

import numpy as np

from cifar10lib.base.errors import DataError
from cifar10lib.base.errors import UserError
from cifar10lib.data import idx

DATA_DIR = '/tmp/cifar10_data'        # the tutorial's default --data_dir

ORIGINAL_IMAGE_SIZE = 32
IMAGE_DEPTH = 3
CROP_SIZE = 24                        # the tutorial's crop (cifar10_input.IMAGE_SIZE)
NUM_CLASSES = 10
BATCHES_DIR = 'cifar-10-batches-bin'
TRAIN_FILES = ['data_batch_%d.bin' % i for i in range(1, 6)]
EVAL_FILES = ['test_batch.bin']


class Dataset(collections.namedtuple('Dataset', [
    'name', 'batches_dir', 'train_files', 'eval_files', 'label_classes',
    'label_byte', 'url', 'md5', 'tarball', 'label_names',
    'image_size', 'depth', 'header_bytes', 'crop_size', 'flip', 'idx',
    'preprocessing_modes', 'log_epochs', 'augmentation', 'class_names',
    'title', 'mirrors'],
    # The geometry and pipeline fields default to CIFAR's.
    defaults=(ORIGINAL_IMAGE_SIZE, IMAGE_DEPTH, 0, CROP_SIZE, True, False,
              None, False, 'tutorial', None, 'CIFAR-10', ()))):
  """One binary dataset: where its files are, how to read a label, where from.

  Each record starts with one byte per entry of label_classes (that label's
  number of classes); label_byte picks the label the model learns, and
  label_names is the file in batches_dir naming its classes, one per line.
  Images are image_size square with depth channels, after header_bytes of
  each file; the network sees crop_size squares, mirrored at random in
  training when flip. idx: the files are IDX files (MNIST), whose records
  hold no label: labels come from each image file's label file. The data
  comes from url (then each of mirrors) as tarball, whose MD5 md5 is, or,
  when tarball is None, as the gzipped files md5 maps to their MD5s, each
  fetched from url + its name.
  preprocessing_modes: the --preprocessing modes it takes (None: all);
  log_epochs: whether the progress lines show the epoch by default;
  augmentation: the training augmentation, a key of
  cifar10_input.AUGMENTATIONS; class_names: the names to use when the data
  directory has no label_names file (None: numbers); title: its name in
  messages.
  """

  @property
  def labels_in_records(self):
    """Whether each record starts with its labels (else: IDX label files)."""
    return not self.idx

  @property
  def label_bytes(self):
    return 0 if self.idx else len(self.label_classes)

  @property
  def image_bytes(self):
    return self.image_size * self.image_size * self.depth

  @property
  def num_classes(self):
    return self.label_classes[self.label_byte]

  @property
  def record_bytes(self):
    return self.label_bytes + self.image_bytes


CIFAR10 = Dataset(
    name='cifar10', batches_dir=BATCHES_DIR, train_files=TRAIN_FILES,
    eval_files=EVAL_FILES, label_classes=(NUM_CLASSES,), label_byte=0,
    url='https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz',
    md5='c32a1d4ab5d03f1284b67883e8d87530', tarball='cifar-10-binary.tar.gz',
    label_names='batches.meta.txt',
    class_names=('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog',
                 'frog', 'horse', 'ship', 'truck'))
CIFAR100 = Dataset(
    name='cifar100', batches_dir='cifar-100-binary', train_files=['train.bin'],
    eval_files=['test.bin'], label_classes=(20, 100), label_byte=1,
    url='https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz',
    md5='03b5dce01913d631647c71ecec9e9cb8', tarball='cifar-100-binary.tar.gz',
    label_names='fine_label_names.txt', title='CIFAR-100')
CIFAR100_COARSE = CIFAR100._replace(label_byte=0,
                                    label_names='coarse_label_names.txt')
# MNIST's files come gzipped, each with its own MD5; the pipeline reads the
# unpacked copies in batches_dir. No crop (crop_size is the whole 28x28: the
# digits fill the middle 20x20 and a 24x24 crop could cut strokes off) and
# no mirroring (a mirrored digit is another or no digit).
MNIST_FILES = collections.OrderedDict([
    ('train-images-idx3-ubyte.gz', 'f68b3c2dcbeaaa9fbdd348bbdeb94873'),
    ('train-labels-idx1-ubyte.gz', 'd53e105ee54ea40749a09fcbcd1e9432'),
    ('t10k-images-idx3-ubyte.gz', '9fb629c4189551a2d022fa330f9573f3'),
    ('t10k-labels-idx1-ubyte.gz', 'ec29112dd5afa0611ce80d1b7f02629c'),
])
MNIST = Dataset(
    name='mnist', batches_dir='mnist', train_files=['train-images-idx3-ubyte'],
    eval_files=['t10k-images-idx3-ubyte'], label_classes=(10,), label_byte=0,
    url='http://yann.lecun.com/exdb/mnist/', md5=MNIST_FILES, tarball=None,
    # TensorFlow's own mirror, when the official location fails.
    mirrors=('https://storage.googleapis.com/cvdf-datasets/mnist/',),
    label_names=None,
    image_size=28, depth=1, header_bytes=idx.IMAGES_HEADER_BYTES,
    crop_size=28, flip=False, idx=True, log_epochs=True,
    augmentation='random_shift', title='MNIST')
# --dataset's choices. A new dataset is one more entry (its Dataset above).
DATASETS = collections.OrderedDict([
    ('cifar10', CIFAR10), ('cifar100', CIFAR100), ('mnist', MNIST)])


def dataset(name='cifar10', cifar100_labels='fine'):
  """The Dataset called name; CIFAR-100 with its fine or coarse labels."""
  if name == 'cifar100' and cifar100_labels == 'coarse':
    return CIFAR100_COARSE
  if name not in DATASETS:
    raise ValueError('unknown dataset %r' % name)
  return DATASETS[name]


def data_files(data_dir, eval_data, ds=CIFAR10):
  """Returns the paths of the training files, or of the test file if eval_data."""
  names = ds.eval_files if eval_data else ds.train_files
  return [os.path.join(data_dir, ds.batches_dir, name) for name in names]


def count_examples(filenames, ds=CIFAR10):
  """Checks every file and returns how many records they hold together.

  Raises DataError naming the first file that is missing, empty, not a whole
  number of records, or holding a label outside its range (every label byte
  of every record is checked). Scanning the labels is cheap and turns a
  silent training on garbage into an error. IDX files (MNIST) are checked by
  idx.check_pair: headers, sizes, counts and labels of both files.
  """
  if ds.idx:
    return sum(idx.check_pair(path, ds.image_size, ds.image_size,
                              ds.num_classes)[0] for path in filenames)
  record_bytes = ds.record_bytes
  total = 0
  for path in filenames:
    if os.path.isdir(path):
      raise DataError('%s: is a directory, not a batch file' % path)
    if not os.path.isfile(path):
      raise DataError('%s: file not found' % path)
    size = os.path.getsize(path)
    if size == 0 or size % record_bytes:
      raise DataError('%s: size %d bytes is not a positive multiple of the '
                      'record size %d' % (path, size, record_bytes))
    try:
      records = np.fromfile(path, dtype=np.uint8).reshape(-1, record_bytes)
    except (IOError, OSError) as e:
      raise DataError('%s: cannot read it: %s' % (path, e.strerror or e))
    for byte, limit in enumerate(ds.label_classes):
      labels = records[:, byte]
      bad = np.flatnonzero(labels >= limit)
      if bad.size:
        raise DataError('%s: record %d has label %d, outside 0..%d'
                        % (path, bad[0], labels[bad[0]], limit - 1))
    total += size // record_bytes
  return total


def record_ranges(filenames, records=None, ds=CIFAR10):
  """The part of each file that the global range records=(start, stop) covers.

  records counts over the files concatenated in order (None: all of them).
  Returns [(path, first, end)] for the files with at least one record in the
  range, record numbers local to each file, and the number of records.
  """
  sizes = [(os.path.getsize(path) - ds.header_bytes) // ds.record_bytes
           for path in filenames]
  start, stop = records if records is not None else (0, sum(sizes))
  ranges = []
  offset = 0
  for path, size in zip(filenames, sizes):
    first, end = max(start - offset, 0), min(stop - offset, size)
    if first < end:
      ranges.append((path, first, end))
    offset += size
  return ranges, sum(end - first for _, first, end in ranges)


class Split(collections.namedtuple('Split', [
    'ds', 'filenames', 'records', 'num_examples'])):
  """Some records of a data directory's files.

  records is the (start, stop) range over the files concatenated in order
  (None: all of them), the `records` argument of cifar10_input's pipelines.
  """


def split(data_dir, name, ds=CIFAR10, validation_examples=0):
  """The Split called name of data_dir's ds files; every file is checked.

  name: 'train' (the training files less their last validation_examples
  records; 'train_eval' is the same records), 'validation' (those last
  records) or 'test'. Raises UserError when validation_examples does not fit.
  """
  filenames = data_files(data_dir, name == 'test', ds)
  total = count_examples(filenames, ds)
  if name == 'test':
    return Split(ds, filenames, None, total)
  if validation_examples >= total:
    raise UserError('--validation_examples=%d: must be less than the %d '
                    'training records' % (validation_examples, total))
  if name == 'validation':
    if not validation_examples:
      raise UserError('--eval_data=validation needs --validation_examples=N, '
                      'the N that training held out')
    return Split(ds, filenames, (total - validation_examples, total),
                 validation_examples)
  if name not in ('train', 'train_eval'):
    raise ValueError('unknown split %r' % name)
  return Split(ds, filenames, (0, total - validation_examples),
               total - validation_examples)


def _read_records(path, first, end, ds):
  """Records first..end-1 of path, a [n, record_bytes] uint8 numpy array."""
  return np.fromfile(path, np.uint8, (end - first) * ds.record_bytes,
                     offset=ds.header_bytes + first * ds.record_bytes
                     ).reshape(end - first, ds.record_bytes)


def read_images(split, chunk_records):
  """Yields split's images, at most chunk_records at a time, in file order.

  Each chunk is a [n, image_size, image_size, depth] uint8 numpy array,
  decoded as the input pipeline decodes the records (CIFAR's depth-major
  pixels to height, width, depth).
  """
  ds = split.ds
  ranges, _ = record_ranges(split.filenames, split.records, ds)
  for path, first, end in ranges:
    for start in range(first, end, chunk_records):
      records = _read_records(path, start, min(start + chunk_records, end), ds)
      yield records[:, ds.label_bytes:].reshape(
          -1, ds.depth, ds.image_size, ds.image_size).transpose(0, 2, 3, 1)


def read_labels(split):
  """The learned label of each of split's records, int32 numpy, file order."""
  ds = split.ds
  ranges, _ = record_ranges(split.filenames, split.records, ds)
  labels = []
  for path, first, end in ranges:
    if ds.idx:
      file_labels = idx.check_pair(path, ds.image_size, ds.image_size,
                                   ds.num_classes)[1]
      labels.append(np.asarray(file_labels[first:end], np.int32))
    else:
      labels.append(_read_records(path, first, end, ds)[:, ds.label_byte]
                    .astype(np.int32))
  return np.concatenate(labels)
