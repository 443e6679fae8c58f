"""Fake MNIST: IDX files (big-endian headers, then uint8 bytes), written as
the published format lays them out, raw or gzipped, and a PNG writer."""
import gzip
import os
import struct
import zlib

import numpy as np


def idx_images_bytes(pixels):
  """IDX image-file bytes of uint8 pixels [n, rows, cols]."""
  pixels = np.asarray(pixels, np.uint8)
  n, rows, cols = pixels.shape
  return struct.pack('>IIII', 2051, n, rows, cols) + pixels.tobytes()


def idx_labels_bytes(labels):
  labels = np.asarray(labels, np.uint8)
  return struct.pack('>II', 2049, len(labels)) + labels.tobytes()


def make_digits(labels, seed=0, learnable=False):
  """uint8 images [n, 28, 28] for labels.

  Pixels 0 and 1 of each image hold its index (i % 256, i // 256), so that
  a test can tell which record an image is. learnable=True draws class c
  as a bright 10x3 block over faint noise, at rows 2..11 (c < 5) or 16..25
  and columns 5(c % 5)+2..+4: blocks 2 pixels apart or more, so that the
  training shifts of up to 2 pixels keep the classes apart.
  """
  rng = np.random.RandomState(seed)
  n = len(labels)
  pixels = rng.randint(0, 256 if not learnable else 40,
                       size=(n, 28, 28)).astype(np.uint8)
  if learnable:
    for i, c in enumerate(labels):
      row, col = 14 * (c // 5) + 2, 5 * (c % 5) + 2
      pixels[i, row:row + 10, col:col + 3] = 255
  pixels[:, 0, 0] = np.arange(n) % 256
  pixels[:, 0, 1] = np.arange(n) // 256
  return pixels


def write_idx(data_dir, train=300, test=100, seed=0, learnable=False,
              gz=False):
  """Writes data_dir/mnist/ with MNIST's four files (or the .gz files into
  data_dir when gz). Returns {'train': (labels, pixels), 'test': ...}."""
  rng = np.random.RandomState(seed)
  out = {}
  target = str(data_dir) if gz else os.path.join(str(data_dir), 'mnist')
  os.makedirs(target, exist_ok=True)
  for prefix, key, n in (('train', 'train', train), ('t10k', 'test', test)):
    labels = rng.randint(0, 10, size=n).astype(np.uint8)
    pixels = make_digits(labels, seed + len(out), learnable)
    for kind, data in (('images-idx3', idx_images_bytes(pixels)),
                       ('labels-idx1', idx_labels_bytes(labels))):
      name = '%s-%s-ubyte' % (prefix, kind)
      if gz:
        with gzip.open(os.path.join(target, name + '.gz'), 'wb') as f:
          f.write(data)
      else:
        with open(os.path.join(target, name), 'wb') as f:
          f.write(data)
    out[key] = (labels, pixels)
  return out


def write_png(path, pixels):
  """Writes uint8 pixels [rows, cols, 3] as an RGB PNG (standard library
  only); returns path."""
  pixels = np.asarray(pixels, np.uint8)
  rows, cols, _ = pixels.shape

  def chunk(kind, body):
    return (struct.pack('>I', len(body)) + kind + body +
            struct.pack('>I', zlib.crc32(kind + body) & 0xffffffff))
  scanlines = b''.join(b'\x00' + row.tobytes() for row in pixels)
  png = (b'\x89PNG\r\n\x1a\n' +
         chunk(b'IHDR', struct.pack('>IIBBBBB', cols, rows, 8, 2, 0, 0, 0)) +
         chunk(b'IDAT', zlib.compress(scanlines)) + chunk(b'IEND', b''))
  with open(str(path), 'wb') as f:
    f.write(png)
  return str(path)
