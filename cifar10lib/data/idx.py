"""Reads and checks MNIST's IDX files, the format its four files come in.

An IDX file is a big-endian header (a magic number, then one 32-bit count
per dimension) followed by the bytes of the array: 2051 and [n, 28, 28] for
images, 2049 and [n] for labels. The pipeline reads the images with a
FixedLengthRecordReader that skips the 16-byte header; the labels are small
(one byte an image) and are loaded here, checked, into the graph.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import os
import struct

import numpy as np

from cifar10lib.base.errors import DataError

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
IMAGES_HEADER_BYTES = 16          # magic, count, rows, columns
LABELS_HEADER_BYTES = 8           # magic, count


def labels_path(images_path):
  """The label file of an image file: train-images-idx3-ubyte ->
  train-labels-idx1-ubyte, in the same directory."""
  directory, name = os.path.split(images_path)
  return os.path.join(directory, name.replace('-images-idx3-', '-labels-idx1-'))


def _header(path, words, magic, kind):
  """The header's words after the magic number, which must be magic."""
  if os.path.isdir(path):
    raise DataError('%s: is a directory, not an IDX file' % path)
  if not os.path.isfile(path):
    raise DataError('%s: file not found' % path)
  try:
    with open(path, 'rb') as f:
      raw = f.read(4 * words)
  except (IOError, OSError) as e:
    raise DataError('%s: cannot read it: %s' % (path, e.strerror or e))
  if len(raw) >= 4 and struct.unpack('>I', raw[:4])[0] != magic:
    raise DataError('%s: not an IDX %s file (magic number %d, expected %d)'
                    % (path, kind, struct.unpack('>I', raw[:4])[0], magic))
  if len(raw) < 4 * words:
    raise DataError('%s: truncated IDX file: %d bytes, shorter than its '
                    '%d-byte header' % (path, len(raw), 4 * words))
  return struct.unpack('>%dI' % words, raw)[1:]


def _check_size(path, header_bytes, count, item_bytes, what):
  size = os.path.getsize(path)
  expected = header_bytes + count * item_bytes
  if size != expected:
    raise DataError('%s: %s IDX file: its header says %d %s (%d bytes), the '
                    'file has %d bytes' % (
                        path, 'truncated' if size < expected else 'oversized',
                        count, what, expected, size))


def check_images(path, rows, cols):
  """Checks an IDX image file's header and size; returns its image count."""
  count, r, c = _header(path, 4, IMAGES_MAGIC, 'image')
  if (r, c) != (rows, cols):
    raise DataError('%s: images are %dx%d, expected %dx%d'
                    % (path, r, c, rows, cols))
  _check_size(path, IMAGES_HEADER_BYTES, count, rows * cols, 'images')
  return count


def read_labels(path, count, num_classes):
  """The labels of an IDX label file, checked against count images.

  Returns a uint8 array; raises DataError naming the file when its header,
  size, count or a label is wrong.
  """
  n, = _header(path, 2, LABELS_MAGIC, 'label')
  _check_size(path, LABELS_HEADER_BYTES, n, 1, 'labels')
  if n != count:
    raise DataError('%s: holds %d labels, its image file %d images'
                    % (path, n, count))
  labels = np.fromfile(path, dtype=np.uint8, offset=LABELS_HEADER_BYTES)
  bad = np.flatnonzero(labels >= num_classes)
  if bad.size:
    raise DataError('%s: label %d is %d, outside 0..%d'
                    % (path, bad[0], labels[bad[0]], num_classes - 1))
  return labels


def check_pair(images_path, rows, cols, num_classes):
  """Checks an image file and its label file; returns (count, labels)."""
  count = check_images(images_path, rows, cols)
  return count, read_labels(labels_path(images_path), count, num_classes)
