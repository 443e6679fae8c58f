"""MNIST's part of the input pipeline: labels from the IDX label files, and
the digits' own augmentation.

cifar10_input.py reads MNIST's image files with the same queue-based
FixedLengthRecordReader as CIFAR's (its header_bytes skip the IDX header).
An image record holds no label, so `decode` finds each one's label from the
reader's key, "<file>:<record number>": the label files, checked and loaded
when the graph is built (one byte an image), become one constant, and record
i of a file takes byte i of that file's labels. Image i always carries
label i, whatever the order the reads come in.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import numpy as np

from cifar10lib.base.compat import tf
from cifar10lib.data import idx

MAX_SHIFT = 2                     # pixels a training digit may move each way


def _global_indices(keys, filenames, sizes):
  """Each key's record number over filenames concatenated in order."""
  with tf.name_scope('record_numbers'):
    files = tf.strings.regex_replace(keys, r':[0-9]+$', '')
    numbers = tf.strings.to_number(
        tf.strings.regex_replace(keys, r'^.*:', ''), tf.int64)
    # Exactly one of filenames matches a key's file: argmax finds which.
    which = tf.argmax(tf.cast(tf.equal(tf.expand_dims(files, 1),
                                       tf.constant(list(filenames))),
                              tf.int32), 1)
    offsets = tf.constant(np.cumsum([0] + list(sizes[:-1])), tf.int64)
    return tf.gather(offsets, which) + numbers


def decode(keys, values, filenames, records, ds):
  """Labels and images of the records read, those outside records dropped.

  keys and values are a reader's output over filenames (IDX image files);
  records=(start, stop) counts over the files in order (None: all). Returns
  int32 labels [n] and float32 images [n, 28, 28, 1].
  """
  pairs = [idx.check_pair(path, ds.image_size, ds.image_size, ds.num_classes)
           for path in filenames]
  sizes = [count for count, _ in pairs]
  all_labels = np.concatenate([labels for _, labels in pairs])
  with tf.name_scope('idx_labels'):
    index = _global_indices(keys, filenames, sizes)
    if records is not None:
      keep = (index >= records[0]) & (index < records[1])
      index = tf.boolean_mask(index, keep)
      values = tf.boolean_mask(values, keep)
    labels = tf.gather(tf.constant(all_labels.astype(np.int32)), index)
  count = tf.shape(values)[0]
  raw = tf.reshape(tf.decode_raw(values, tf.uint8),
                   [count, ds.image_size, ds.image_size, ds.depth])
  return labels, tf.cast(raw, tf.float32)


def random_shift(images, size):
  """Each image moved by up to MAX_SHIFT pixels each way, zeros filling in.

  The digits' augmentation (as in LeNet's and most MNIST work): no mirror,
  and no colour change, which per-image standardization would undo anyway.
  Every image draws its own offsets; one gather per axis moves the batch.
  """
  count = tf.shape(images)[0]
  with tf.name_scope('random_shift'):
    padded = tf.pad(images, [[0, 0], [MAX_SHIFT, MAX_SHIFT],
                             [MAX_SHIFT, MAX_SHIFT], [0, 0]])
    offsets = tf.random_uniform([count, 2], maxval=2 * MAX_SHIFT + 1,
                                dtype=tf.int32)
    steps = tf.range(size)
    images = tf.gather(padded, offsets[:, :1] + steps, axis=1, batch_dims=1)
    return tf.gather(images, offsets[:, 1:] + steps, axis=2, batch_dims=1)
