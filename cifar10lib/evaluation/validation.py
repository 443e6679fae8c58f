"""The held-out records evaluated inside the trainer (--lr_schedule=plateau).

A `Validator` adds a second copy of the network to the training graph, in
evaluation mode (no dropout, batch normalization's moving statistics) and
sharing the training weights (their raw values, not the moving averages
that cifar10_eval.py restores). It reads the validation records into memory
once, and feeds them batch by batch: every evaluation counts each record
exactly once, in a session the trainer already holds.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import contextlib

import numpy as np

from cifar10lib.base.compat import tf
from cifar10lib.data import cifar10_input
from cifar10lib.data import datasets
from cifar10lib.training import cifar10

VALIDATION_SCOPE = 'validation'
# Collections that building a network adds to. The training graph has
# already used them (the loss, its summaries, the update ops), and the
# evaluation copy must not join them: its summaries would need its feed.
_COLLECTIONS = (tf.GraphKeys.SUMMARIES, 'losses', tf.GraphKeys.UPDATE_OPS)
READ_CHUNK = 10000


@contextlib.contextmanager
def _collections_kept():
  """Drops whatever the block adds to _COLLECTIONS."""
  lengths = {key: len(tf.get_collection(key)) for key in _COLLECTIONS}
  yield
  for key, length in lengths.items():
    del tf.get_collection_ref(key)[length:]


class Validator(object):
  """Precision @ 1 of the current weights on split's records.

  Build it after the training network (whose variables it reuses). mean is
  the preprocessing's mean variable (None: standardization), model_options
  inference()'s keyword arguments.
  """

  def __init__(self, split, batch_size, use_fp16=False, model_options=None,
               mean=None):
    self._images = np.concatenate(list(datasets.read_images(split,
                                                            READ_CHUNK)))
    self._labels = datasets.read_labels(split)
    self._batch_size = batch_size
    ds = split.ds
    with _collections_kept(), tf.variable_scope(tf.get_variable_scope(),
                                                reuse=True):
      with tf.name_scope(VALIDATION_SCOPE):
        self._feed_images = tf.placeholder(
            tf.uint8, [None, ds.image_size, ds.image_size, ds.depth])
        self._feed_labels = tf.placeholder(tf.int32, [None])
        images = cifar10_input.eval_images(
            tf.cast(self._feed_images, tf.float32), ds, mean)
        if use_fp16:
          images = tf.cast(images, tf.float16)
        logits = cifar10.inference(images, train=False,
                                   **(model_options or {}))
        self._correct = tf.reduce_sum(tf.cast(tf.nn.in_top_k(
            tf.cast(logits, tf.float32), self._feed_labels, 1), tf.int32))

  def correct(self, session):
    """Returns (records classified right, records) over the whole split."""
    correct = 0
    for start in range(0, len(self._labels), self._batch_size):
      stop = start + self._batch_size
      correct += int(session.run(self._correct, {
          self._feed_images: self._images[start:stop],
          self._feed_labels: self._labels[start:stop]}))
    return correct, len(self._labels)
