"""The batched crop and flip give every image its own tutorial-style draw.

distorted_inputs distorts 512 records at a time instead of one; these tests
check that each image still gets an exact 24x24 window of its own pixels at
its own uniformly drawn offset, mirrored left-right with probability 1/2.
"""
import collections

import numpy as np

import cifar10_input
from cifar10 import tf

COUNT = 2000
CROP = cifar10_input.IMAGE_SIZE
POSITIONS = (32 - CROP + 1) ** 2


def _position_coded_images(count):
  """Images whose pixel values spell (channel, row, column)."""
  r = np.arange(32)
  plane = (r[:, None] * 100 + r[None, :]).astype(np.float32)
  image = np.stack([plane, plane + 10000, plane + 20000], axis=-1)
  return np.repeat(image[None], count, axis=0)


def test_each_image_gets_its_own_window_and_coin():
  images = _position_coded_images(COUNT)
  with tf.Graph().as_default():
    crops = cifar10_input._random_crop_and_flip(tf.constant(images))
    with tf.Session() as sess:
      crops = sess.run(crops)
  assert crops.shape == (COUNT, CROP, CROP, 3)
  offsets = collections.Counter()
  mirrored = 0
  for crop in crops:
    top, left = divmod(int(crop[0, 0, 0]), 100)
    flipped = crop[0, 1, 0] < crop[0, 0, 0]
    if flipped:
      left -= CROP - 1
    window = images[0, top:top + CROP, left:left + CROP]
    np.testing.assert_array_equal(crop, window[:, ::-1] if flipped else window)
    offsets[top, left] += 1
    mirrored += flipped
  # 2,000 draws over 81 positions: each is expected about 25 times.
  assert len(offsets) == POSITIONS
  assert max(offsets.values()) < 3 * COUNT / POSITIONS
  assert 0.4 < mirrored / COUNT < 0.6
