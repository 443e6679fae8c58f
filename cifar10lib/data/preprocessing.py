"""How the images are normalized before the network sees them (--preprocessing).

    standardize    the tutorial's: each image scaled to mean 0, deviation 1
    mean_image     the training set's mean image subtracted, pixel by pixel
    channel_mean   the training set's mean red, green and blue subtracted
    channel_standardize  that, then divided by the channel's deviation

The means are computed once, in numpy, from the training split's records
when training builds its graph, and kept in the non-trainable variable
`preprocessing/mean`: the checkpoint saves them with the weights, so that
evaluation and classification subtract the training set's mean (restored
from the checkpoint) rather than one of their own data.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import numpy as np

from cifar10lib.base.compat import tf
from cifar10lib.base.errors import UserError
from cifar10lib.data import datasets

STANDARDIZE = 'standardize'       # the tutorial's per-image standardization
MODES = (STANDARDIZE, 'mean_image', 'channel_mean', 'channel_standardize')
MEAN_SCOPE = 'preprocessing'
MEAN_NAME = 'mean'
# The records are summed a file-sized chunk at a time; float64 keeps the sum
# of 50,000 images exact enough.
CHUNK_RECORDS = 10000


def mean_shape(mode, ds=datasets.CIFAR10):
  """The shape of mode's mean: an image ([32, 32, 3] for CIFAR), one
  value per channel, or [2, depth]: each channel's mean, then its
  standard deviation."""
  if mode == 'mean_image':
    return [ds.image_size, ds.image_size, ds.depth]
  if mode == 'channel_mean':
    return [ds.depth]
  if mode == 'channel_standardize':
    return [2, ds.depth]
  raise ValueError('no mean in preprocessing %r' % mode)


def compute_mean(mode, split):
  """mode's mean of the records of split (a datasets.Split), float32 numpy.

  Pixels count on the 0..255 scale of the decoded images.
  """
  key = (mode, tuple(split.filenames), split.records)
  if key in _computed:
    return _computed[key]
  total = np.zeros(mean_shape('mean_image', split.ds), np.float64)
  squares = np.zeros_like(total)
  count = 0
  for images in datasets.read_images(split, CHUNK_RECORDS):
    total += images.sum(axis=0, dtype=np.float64)
    if mode == 'channel_standardize':
      squares += np.square(images, dtype=np.float64).sum(axis=0)
    count += len(images)
  mean = total / count
  if mode == 'channel_standardize':
    channel_mean = mean.mean(axis=(0, 1))
    variance = squares.mean(axis=(0, 1)) / count - np.square(channel_mean)
    mean = np.stack([channel_mean, np.sqrt(np.maximum(variance, 1e-6))])
  elif mode == 'channel_mean':
    mean = mean.mean(axis=(0, 1))
  _computed[key] = mean.astype(np.float32)
  return _computed[key]


# compute_mean's results, by mode and records: a trainer preparing the
# whitened networks (normalize_numpy) reads the data once.
_computed = {}


def normalize(images, mean):
  """images centred by mean (mean_variable's), or standardized per channel
  by it when it holds [mean, deviation] (works on tensors and numpy)."""
  if len(mean.shape) == 2:
    return (images - mean[0]) / mean[1]
  return images - mean


def normalize_numpy(images, mode, split):
  """Float32 numpy images as the pipeline normalizes them in mode.

  The statistics are split's (compute_mean); standardize is the tutorial's
  per-image standardization.
  """
  images = np.asarray(images, np.float32)
  if mode == STANDARDIZE:
    axes = tuple(range(1, images.ndim))
    mean = images.mean(axis=axes, keepdims=True)
    deviation = np.maximum(images.std(axis=axes, keepdims=True),
                           1.0 / np.sqrt(np.prod(images.shape[1:])))
    return (images - mean) / deviation
  return normalize(images, compute_mean(mode, split))


def mean_variable(mode, split=None, ds=datasets.CIFAR10):
  """The `preprocessing/mean` variable of mode, or None for standardize.

  Training gives split, whose mean initializes it; evaluation and
  classification give none (but their ds): the variable starts at zeros
  and is restored from the checkpoint. Not trainable: no gradient, no moving average.
  """
  if mode == STANDARDIZE:
    return None
  if split is None:
    initial = np.zeros(mean_shape(mode, ds), np.float32)
  else:
    initial = compute_mean(mode, split)
  with tf.variable_scope(MEAN_SCOPE):
    return tf.get_variable(MEAN_NAME, initializer=tf.constant(initial),
                           trainable=False)


def check_checkpoint(checkpoint, mode):
  """Raises UserError when checkpoint was trained with another preprocessing.

  A model trained on mean-centred images and evaluated on standardized ones
  would give a wrong precision without any error; the other way round, the
  checkpoint lacks the mean, which the restore reports.
  """
  reader = tf.train.NewCheckpointReader(checkpoint)
  name = MEAN_SCOPE + '/' + MEAN_NAME
  if mode == STANDARDIZE and reader.has_tensor(name):
    shape = reader.get_variable_to_shape_map()[name]
    trained = ('channel_mean' if len(shape) == 1 else 'channel_standardize'
               if shape[0] == 2 and len(shape) == 2 else 'mean_image')
    raise UserError('checkpoint %s was trained with --preprocessing=%s; give '
                    'that flag here too' % (checkpoint, trained))
