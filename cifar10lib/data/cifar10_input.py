"""Reads the CIFAR binary files through TensorFlow's queue-based input pipeline.

A `FixedLengthRecordReader` reads the records (the format and the files are
datasets.py's); `distorted_inputs` feeds training (random crops, flips and
colour changes, shuffled batches), `inputs` feeds evaluation (central crop,
in file order, each record once per epoch). `eval_images` is evaluation's
preprocessing, which cifar10_classify.py applies to your own images too.

A `records` range (start, stop) over the concatenated files selects part of
them, which is how the last records of the training files are held out as a
validation set.

MNIST's IDX files go through the same reader and queues; mnist_input.py
gives their records their labels and the digits their augmentation.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import collections
import os

import numpy as np

from cifar10lib.base.compat import tf
from cifar10lib.base.errors import DataError
from cifar10lib.data import mnist_input
from cifar10lib.data import preprocessing
from cifar10lib.data.datasets import CIFAR10
from cifar10lib.data.datasets import CROP_SIZE
from cifar10lib.data.datasets import IMAGE_DEPTH
from cifar10lib.data.datasets import ORIGINAL_IMAGE_SIZE
from cifar10lib.data.datasets import count_examples
from cifar10lib.data.datasets import data_files
from cifar10lib.data.datasets import record_ranges

# The tutorial's input hyper-parameters.
IMAGE_SIZE = CROP_SIZE                  # side of the crop fed to the network (24)
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
# --augmentation: the data set's own (for CIFAR the tutorial's 24x24 crops,
# flips, brightness and contrast), or the fast recipes' on full images.
TUTORIAL_AUGMENTATION = 'tutorial'
INPUT_MODES = (TUTORIAL_AUGMENTATION, 'translate_flip')
MAX_TRANSLATION = 2                     # pixels, reflect-padded


def _select(keys, values, ranges, ds):
  """The values whose reader keys ("<file>:<record number>") are in ranges.

  Returns values unchanged, adding no op, when every range is a whole file.
  """
  whole = all(first == 0 and end * ds.record_bytes == os.path.getsize(path)
              for path, first, end in ranges)
  if whole:
    return values
  with tf.name_scope('select_records'):
    files = tf.strings.regex_replace(keys, r':[0-9]+$', '')
    numbers = tf.strings.to_number(
        tf.strings.regex_replace(keys, r'^.*:', ''), tf.int64)
    paths = tf.constant([path for path, _, _ in ranges])
    firsts = tf.constant([first for _, first, _ in ranges], tf.int64)
    ends = tf.constant([end for _, _, end in ranges], tf.int64)
    in_file = tf.equal(tf.expand_dims(files, 1), paths)
    numbers = tf.expand_dims(numbers, 1)
    keep = tf.reduce_any(in_file & (numbers >= firsts) & (numbers < ends), 1)
    return tf.boolean_mask(values, keep)


def _decode(records, ds=CIFAR10):
  """Splits raw records (a string tensor of any shape) into labels and images.

  Returns int32 labels of the records' shape and float32 images of that shape
  plus [image_size, image_size, depth].
  """
  outer = tf.shape(records)
  # The explicit record length keeps the shape right for an empty batch (all
  # of a read held out), which decode_raw alone would make [0, 0].
  raw = tf.reshape(tf.decode_raw(records, tf.uint8),
                   tf.concat([outer, [ds.record_bytes]], 0))
  label = tf.cast(raw[..., ds.label_byte], tf.int32)
  depth_major = tf.reshape(
      raw[..., ds.label_bytes:],
      tf.concat([outer, [ds.depth, ds.image_size, ds.image_size]], 0))
  rank = records.shape.ndims
  perm = list(range(rank)) + [rank + 1, rank + 2, rank]
  image = tf.cast(tf.transpose(depth_major, perm), tf.float32)
  return label, image


class CIFAR10Record(object):
  """One decoded record: its key, int32 label and [32, 32, 3] uint8 image."""
  height = ORIGINAL_IMAGE_SIZE
  width = ORIGINAL_IMAGE_SIZE
  depth = IMAGE_DEPTH


def read_cifar10(filename_queue, ds=CIFAR10):
  """Reads one record from the files named by filename_queue.

  Returns a CIFAR10Record with `key`, `label` (int32 scalar) and `uint8image`
  ([32, 32, 3] uint8), the tutorial's reader interface.
  """
  result = CIFAR10Record()
  reader = tf.FixedLengthRecordReader(record_bytes=ds.record_bytes)
  result.key, value = reader.read(filename_queue)
  label, image = _decode(value, ds)
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


def translate_flip(images, keys, epoch, max_shift=MAX_TRANSLATION):
  """Full images shifted by up to max_shift pixels, flipped by epoch.

  Each image is reflect-padded by max_shift and a window of its own size
  cut at a random offset (uniform over the (2 max_shift + 1)^2 positions).
  Each record (its reader key) has a fixed coin, a hash of the key: on even
  epochs the record is mirrored when its coin says so, on odd epochs when it
  does not, so that every record alternates between its two orientations.
  """
  count = tf.shape(images)[0]
  size = images.shape.as_list()[1]
  with tf.name_scope('translate_flip'):
    padded = tf.pad(images, [[0, 0], [max_shift, max_shift],
                             [max_shift, max_shift], [0, 0]], mode='REFLECT')
    offsets = tf.random_uniform([count, 2], maxval=2 * max_shift + 1,
                                dtype=tf.int32)
    steps = tf.range(size)
    rows = offsets[:, :1] + steps
    coin = tf.cast(tf.strings.to_hash_bucket_fast(keys, 2), tf.int32)
    mirror = tf.expand_dims(tf.bitwise.bitwise_xor(
        coin, tf.cast(epoch % 2, tf.int32)), 1)
    cols = offsets[:, 1:] + mirror * (size - 1) + (1 - 2 * mirror) * steps
    out = tf.gather(padded, rows, axis=1, batch_dims=1)
    out = tf.gather(out, cols, axis=2, batch_dims=1)
    out.set_shape(images.shape)
    return out


class Read(collections.namedtuple('Read', [
    'keys', 'ranges', 'batch_size', 'num_examples_per_epoch'])):
  """What an augmentation may need beyond the images: the reader's keys of
  the records read, the record ranges trained on, the batch and the epoch's
  size."""


def _translate_flip(images, ds, mean, read):
  """translate_flip of normalized images, the epoch the training step's."""
  keys = _select(read.keys, read.keys, read.ranges, ds)
  with tf.name_scope('data_augmentation'):
    images.set_shape([None, ds.image_size, ds.image_size, ds.depth])
    if mean is not None:
      images = preprocessing.normalize(images, mean)
    else:
      images = _standardize(images)
    step = tf.train.get_global_step()
    # The records being read now are trained on a little later (the queue's
    # lag), the same lag for every record in steady state: each record
    # still alternates from one reading to the next.
    epoch = (tf.constant(0, tf.int64) if step is None else
             tf.cast(step, tf.int64) * read.batch_size //
             read.num_examples_per_epoch)
    return translate_flip(images, keys, epoch)


def _standardize(images):
  """Each image of the batch scaled to mean 0 and standard deviation 1.

  The arithmetic of tf.image.per_image_standardization, (x - mean) /
  max(stddev, 1 / sqrt(pixels)), written out because TensorFlow 1.15's op
  fails on an empty batch, which a read wholly inside a held-out range is.
  """
  with tf.name_scope('per_image_standardization'):
    pixels = np.prod(images.shape.as_list()[1:])
    mean = tf.reduce_mean(images, [1, 2, 3], keepdims=True)
    variance = tf.reduce_mean(tf.square(images - mean), [1, 2, 3],
                              keepdims=True)
    stddev = tf.maximum(tf.sqrt(variance), 1.0 / np.sqrt(pixels))
    return (images - mean) / stddev


def _central_crop(images, size=IMAGE_SIZE):
  """The central size square of each image (crop_or_pad's crop)."""
  offset = (images.shape.as_list()[1] - size) // 2
  return images[:, offset:offset + size, offset:offset + size, :]


def eval_images(images, ds=CIFAR10, mean=None, full=False):
  """Evaluation's preprocessing of [n, image_size, image_size, depth] images.

  The central crop_size crop of each (CIFAR: 24x24), standardized: what the
  model sees of a test image, and of an image given to cifar10_classify.py.
  With mean (the training set's mean image or channel means, see
  preprocessing.py) the images are centred by it instead of standardized.
  full (--augmentation=translate_flip's models) keeps the whole image.
  """
  images.set_shape([None, ds.image_size, ds.image_size, ds.depth])
  if mean is not None:
    images = preprocessing.normalize(images, mean)
  if full:
    return images if mean is not None else _standardize(images)
  images = _central_crop(images, ds.crop_size)
  images.set_shape([None, ds.crop_size, ds.crop_size, ds.depth])
  return images if mean is not None else _standardize(images)


def _distort(images, ds, mean=None, read=None):
  """The tutorial's training augmentation of a batch of [32, 32, 3] images.

  Each image gets its own random crop, flip, brightness delta and contrast
  factor, drawn from the tutorial's distributions, exactly as the per-image
  tf.image ops would; running them once per batch instead of once per image
  saves thousands of small op launches per training step. With mean (see
  eval_images) the images are centred by it before the crop, and not
  standardized.
  """
  count = tf.shape(images)[0]
  with tf.name_scope('data_augmentation'):
    if mean is not None:
      images = preprocessing.normalize(images, mean)
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
    images.set_shape([None, IMAGE_SIZE, IMAGE_SIZE, IMAGE_DEPTH])
    if mean is None:
      images = _standardize(images)
  return images


def _reader(ds):
  """The tutorial's reader; it skips the header of IDX files."""
  return tf.FixedLengthRecordReader(record_bytes=ds.record_bytes,
                                    header_bytes=ds.header_bytes or None)


def _shift(images, ds, mean=None, read=None):
  """MNIST's training augmentation: random shifts, then standardization."""
  with tf.name_scope('data_augmentation'):
    if mean is not None:
      images = preprocessing.normalize(images, mean)
    images = mnist_input.random_shift(images, ds.crop_size)
    images.set_shape([None, ds.crop_size, ds.crop_size, ds.depth])
    return images if mean is not None else _standardize(images)


# Training augmentations by name (datasets.Dataset.augmentation, or
# --augmentation's other INPUT_MODES): each takes a batch of decoded float32
# images, the Dataset, the preprocessing's mean and the Read.
AUGMENTATIONS = {'tutorial': _distort, 'random_shift': _shift,
                 'translate_flip': _translate_flip}


def _labels_and_images(keys, values, filenames, ranges, records, ds):
  """The decoded (labels, float32 images) of the records read in range."""
  if ds.labels_in_records:
    return _decode(_select(keys, values, ranges, ds), ds)
  return mnist_input.decode(keys, values, filenames, records, ds)


def distorted_inputs(data_dir, batch_size, filenames=None,
                     num_examples_per_epoch=None,
                     min_fraction_of_examples_in_queue=(
                         MIN_FRACTION_OF_EXAMPLES_IN_QUEUE),
                     num_threads=NUM_PREPROCESS_THREADS, records=None,
                     ds=CIFAR10, mean=None,
                     augmentation=TUTORIAL_AUGMENTATION):
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
    records: (start, stop), the records of the files to train on, counted
      over the files in order; all of them when None.
    ds: the Dataset the files belong to.
    mean: the training set's mean to subtract instead of standardizing each
      image (preprocessing.py); None: the tutorial's standardization.
    augmentation: one of INPUT_MODES: the data set's own augmentation, or
      translate_flip on full images (its epoch counted from the global step).

  Returns:
    images: [batch_size, 24, 24, 3] float32 ([batch_size, 28, 28, 1] for
    MNIST; full images with translate_flip); labels: [batch_size] int32.
  """
  if filenames is None:
    filenames = data_files(data_dir, eval_data=False, ds=ds)
  available = count_examples(filenames, ds)
  ranges, selected = record_ranges(filenames, records, ds)
  if not selected:
    raise DataError('no training records left in %s (%d records, range %s)'
                    % (', '.join(filenames), available, records))
  if num_examples_per_epoch is None:
    num_examples_per_epoch = selected
  filename_queue = tf.train.string_input_producer(
      [path for path, _, _ in ranges])
  keys, values = _reader(ds).read_up_to(filename_queue, RECORDS_PER_READ)
  labels, images = _labels_and_images(keys, values, filenames, ranges,
                                      records, ds)
  name = (ds.augmentation if augmentation == TUTORIAL_AUGMENTATION
          else augmentation)
  images = AUGMENTATIONS[name](
      images, ds, mean,
      Read(keys, ranges, batch_size, num_examples_per_epoch))

  min_queue_examples = int(num_examples_per_epoch *
                           min_fraction_of_examples_in_queue)
  images, labels = tf.train.shuffle_batch(
      [images, labels], batch_size=batch_size, num_threads=num_threads,
      capacity=min_queue_examples + 3 * batch_size,
      min_after_dequeue=min_queue_examples, enqueue_many=True)
  tf.summary.image('images', images, max_outputs=NUM_IMAGES_IN_SUMMARY)
  return images, tf.reshape(labels, [batch_size])


def inputs(eval_data, data_dir, batch_size, filenames=None, num_epochs=None,
           records=None, ds=CIFAR10, mean=None, full=False):
  """Batches of centrally cropped images in file order, for evaluation.

  Records are read batch_size at a time by a single reader thread, so the
  batches come out in file order; with num_epochs=1 every record comes out
  exactly once and the last batch may be smaller than batch_size (an
  OutOfRangeError follows it). num_epochs=1 needs local variables initialized.
  records=(start, stop) reads only those records of the files, counted over
  the files in order (the validation split). mean, full: see eval_images.

  Returns:
    images: [n, 24, 24, 3] float32 ([n, 28, 28, 1] for MNIST); labels: [n]
    int32, n <= batch_size.
  """
  if filenames is None:
    filenames = data_files(data_dir, eval_data, ds)
  count_examples(filenames, ds)
  ranges, _ = record_ranges(filenames, records, ds)
  filename_queue = tf.train.string_input_producer(
      [path for path, _, _ in ranges], num_epochs=num_epochs, shuffle=False)
  keys, values = _reader(ds).read_up_to(filename_queue, batch_size)
  labels, images = _labels_and_images(keys, values, filenames, ranges,
                                      records, ds)
  images = eval_images(images, ds, mean, full)
  # One thread keeps the order; the queue still overlaps reading with compute.
  images, labels = tf.train.batch(
      [images, labels], batch_size=batch_size, num_threads=1,
      capacity=4 * batch_size, enqueue_many=True,
      allow_smaller_final_batch=num_epochs is not None)
  tf.summary.image('images', images, max_outputs=NUM_IMAGES_IN_SUMMARY)
  return images, labels
