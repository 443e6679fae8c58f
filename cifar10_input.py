"""Reads the CIFAR-10 binary files through TensorFlow's queue-based input pipeline.

The binary format: every record is one label byte (0..9) followed by 3,072 pixel
bytes, stored depth-major (1,024 red, then green, then blue, each 32x32 row-major).
Files have no header or footer, so the number of examples in a file is its size
divided by the record size; it is read from the files, never assumed.

`distorted_inputs` feeds training (random crops, flips and colour changes, shuffled
batches); `inputs` feeds evaluation (central crop, in file order, each record once
per epoch).
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import os

import numpy as np
import tensorflow.compat.v1 as tf

# Queue pipelines need graph mode; without this, importing this module alone
# works on TensorFlow 1.x but fails on 2.x (cifar10 does the same).
tf.disable_v2_behavior()

# The binary format.
ORIGINAL_IMAGE_SIZE = 32
IMAGE_DEPTH = 3
LABEL_BYTES = 1
IMAGE_BYTES = ORIGINAL_IMAGE_SIZE * ORIGINAL_IMAGE_SIZE * IMAGE_DEPTH
RECORD_BYTES = LABEL_BYTES + IMAGE_BYTES
NUM_CLASSES = 10
BATCHES_DIR = 'cifar-10-batches-bin'
TRAIN_FILES = ['data_batch_%d.bin' % i for i in range(1, 6)]
EVAL_FILES = ['test_batch.bin']

# The tutorial's input hyper-parameters.
IMAGE_SIZE = 24                         # side of the crop fed to the network
# The tutorial ran 16 threads, each distorting one image at a time. Reading and
# distorting RECORDS_PER_READ records per call as one batch costs about a
# fifth of the CPU time per example, and two threads keep the queue full
# (bench/benchmark.py; README, Performance).
NUM_PREPROCESS_THREADS = 2              # threads reading and distorting records
RECORDS_PER_READ = 512                  # records read, distorted and enqueued at once
MIN_FRACTION_OF_EXAMPLES_IN_QUEUE = 0.4  # of an epoch, kept in the shuffling queue
MAX_BRIGHTNESS_DELTA = 63
CONTRAST_RANGE = (0.2, 1.8)
NUM_IMAGES_IN_SUMMARY = 3


class DataError(Exception):
  """A data file is missing or malformed; the message names the file."""


def data_files(data_dir, eval_data):
  """Returns the paths of the training files, or of the test file if eval_data."""
  names = EVAL_FILES if eval_data else TRAIN_FILES
  return [os.path.join(data_dir, BATCHES_DIR, name) for name in names]


def count_examples(filenames, num_classes=NUM_CLASSES):
  """Checks every file and returns how many records they hold together.

  Raises DataError naming the first file that is missing, empty, not a whole
  number of records, or holding a label outside 0..num_classes-1. Scanning the
  label bytes is cheap and turns a silent training on garbage into an error.
  """
  total = 0
  for path in filenames:
    if not os.path.isfile(path):
      raise DataError('%s: file not found' % path)
    size = os.path.getsize(path)
    if size == 0 or size % RECORD_BYTES:
      raise DataError('%s: size %d bytes is not a positive multiple of the '
                      'record size %d' % (path, size, RECORD_BYTES))
    labels = np.fromfile(path, dtype=np.uint8)[::RECORD_BYTES]
    bad = np.flatnonzero(labels >= num_classes)
    if bad.size:
      raise DataError('%s: record %d has label %d, outside 0..%d'
                      % (path, bad[0], labels[bad[0]], num_classes - 1))
    total += size // RECORD_BYTES
  return total


def _decode(records):
  """Splits raw records (a string tensor of any shape) into labels and images.

  Returns int32 labels of the records' shape and float32 images of that shape
  plus [32, 32, 3].
  """
  raw = tf.decode_raw(records, tf.uint8)
  outer = tf.shape(records)
  label = tf.cast(raw[..., 0], tf.int32)
  depth_major = tf.reshape(
      raw[..., LABEL_BYTES:],
      tf.concat([outer, [IMAGE_DEPTH, ORIGINAL_IMAGE_SIZE, ORIGINAL_IMAGE_SIZE]],
                0))
  rank = records.shape.ndims
  perm = list(range(rank)) + [rank + 1, rank + 2, rank]
  image = tf.cast(tf.transpose(depth_major, perm), tf.float32)
  return label, image


class CIFAR10Record(object):
  """One decoded record: its key, int32 label and [32, 32, 3] uint8 image."""
  height = ORIGINAL_IMAGE_SIZE
  width = ORIGINAL_IMAGE_SIZE
  depth = IMAGE_DEPTH


def read_cifar10(filename_queue):
  """Reads one record from the files named by filename_queue.

  Returns a CIFAR10Record with `key`, `label` (int32 scalar) and `uint8image`
  ([32, 32, 3] uint8), the tutorial's reader interface.
  """
  result = CIFAR10Record()
  reader = tf.FixedLengthRecordReader(record_bytes=RECORD_BYTES)
  result.key, value = reader.read(filename_queue)
  label, image = _decode(value)
  result.label = tf.reshape(label, [1])
  result.uint8image = tf.cast(image, tf.uint8)
  result.float_image = image
  return result


def _random_crop_and_flip(images):
  """A random 24x24 window of each image, mirrored left-right half the time.

  Every image draws its own offsets (uniform over the 9x9 positions, as
  tf.random_crop) and its own coin; one gather per axis then copies the
  pixels of the whole batch, mirrored windows read right to left.
  """
  count = tf.shape(images)[0]
  with tf.name_scope('random_crop'):
    offsets = tf.random_uniform([count, 2], maxval=(
        ORIGINAL_IMAGE_SIZE - IMAGE_SIZE + 1), dtype=tf.int32)
    steps = tf.range(IMAGE_SIZE)
    rows = offsets[:, :1] + steps
  with tf.name_scope('random_flip_left_right'):
    mirror = tf.cast(tf.random_uniform([count, 1]) < 0.5, tf.int32)
    cols = offsets[:, 1:] + mirror * (IMAGE_SIZE - 1) + (1 - 2 * mirror) * steps
  images = tf.gather(images, rows, axis=1, batch_dims=1)
  return tf.gather(images, cols, axis=2, batch_dims=1)


def _distort(images):
  """The tutorial's training augmentation of a batch of [32, 32, 3] images.

  Each image gets its own random crop, flip, brightness delta and contrast
  factor, drawn from the tutorial's distributions, exactly as the per-image
  tf.image ops would; running them once per batch instead of once per image
  saves thousands of small op launches per training step.
  """
  count = tf.shape(images)[0]
  with tf.name_scope('data_augmentation'):
    images = _random_crop_and_flip(images)
    with tf.name_scope('adjust_brightness'):
      delta = tf.random_uniform([count, 1, 1, 1], -MAX_BRIGHTNESS_DELTA,
                                MAX_BRIGHTNESS_DELTA)
      images += delta
    with tf.name_scope('adjust_contrast'):
      factor = tf.random_uniform([count, 1, 1, 1], CONTRAST_RANGE[0],
                                 CONTRAST_RANGE[1])
      means = tf.reduce_mean(images, [1, 2], keepdims=True)
      images = (images - means) * factor + means
    images = tf.image.per_image_standardization(images)
    images.set_shape([None, IMAGE_SIZE, IMAGE_SIZE, IMAGE_DEPTH])
  return images


def distorted_inputs(data_dir, batch_size, filenames=None,
                     num_examples_per_epoch=None,
                     min_fraction_of_examples_in_queue=(
                         MIN_FRACTION_OF_EXAMPLES_IN_QUEUE),
                     num_threads=NUM_PREPROCESS_THREADS):
  """Shuffled batches of augmented training images.

  Args:
    data_dir: the directory holding cifar-10-batches-bin/.
    batch_size: images per batch.
    filenames: the files to read; the five training files by default.
    num_examples_per_epoch: records in those files; counted from their sizes
      when None.
    min_fraction_of_examples_in_queue: how much of an epoch the shuffling queue
      holds before the first batch leaves it (the tutorial's 0.4).
    num_threads: threads reading, distorting and enqueueing records.

  Returns:
    images: [batch_size, 24, 24, 3] float32; labels: [batch_size] int32.
  """
  if filenames is None:
    filenames = data_files(data_dir, eval_data=False)
  if num_examples_per_epoch is None:
    num_examples_per_epoch = count_examples(filenames)
  filename_queue = tf.train.string_input_producer(filenames)
  reader = tf.FixedLengthRecordReader(record_bytes=RECORD_BYTES)
  _, records = reader.read_up_to(filename_queue, RECORDS_PER_READ)
  labels, images = _decode(records)
  images = _distort(images)

  min_queue_examples = int(num_examples_per_epoch *
                           min_fraction_of_examples_in_queue)
  images, labels = tf.train.shuffle_batch(
      [images, labels], batch_size=batch_size, num_threads=num_threads,
      capacity=min_queue_examples + 3 * batch_size,
      min_after_dequeue=min_queue_examples, enqueue_many=True)
  tf.summary.image('images', images, max_outputs=NUM_IMAGES_IN_SUMMARY)
  return images, tf.reshape(labels, [batch_size])


def inputs(eval_data, data_dir, batch_size, filenames=None, num_epochs=None):
  """Batches of centrally cropped images in file order, for evaluation.

  Records are read batch_size at a time by a single reader thread, so the
  batches come out in file order; with num_epochs=1 every record comes out
  exactly once and the last batch may be smaller than batch_size (an
  OutOfRangeError follows it). num_epochs=1 needs local variables initialized.

  Returns:
    images: [n, 24, 24, 3] float32; labels: [n] int32, n <= batch_size.
  """
  if filenames is None:
    filenames = data_files(data_dir, eval_data)
  count_examples(filenames)
  filename_queue = tf.train.string_input_producer(
      filenames, num_epochs=num_epochs, shuffle=False)
  reader = tf.FixedLengthRecordReader(record_bytes=RECORD_BYTES)
  _, values = reader.read_up_to(filename_queue, batch_size)
  labels, images = _decode(values)
  images = tf.image.resize_image_with_crop_or_pad(images, IMAGE_SIZE, IMAGE_SIZE)
  images = tf.image.per_image_standardization(images)
  images.set_shape([None, IMAGE_SIZE, IMAGE_SIZE, IMAGE_DEPTH])
  # One thread keeps the order; the queue still overlaps reading with compute.
  images, labels = tf.train.batch(
      [images, labels], batch_size=batch_size, num_threads=1,
      capacity=4 * batch_size, enqueue_many=True,
      allow_smaller_final_batch=num_epochs is not None)
  tf.summary.image('images', images, max_outputs=NUM_IMAGES_IN_SUMMARY)
  return images, labels
