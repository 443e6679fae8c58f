"""Synthetic data in a dataset's real file format, for the benchmarks.

Random pixels and labels laid out as the dataset's own files are (CIFAR's
binary records, or MNIST's IDX image and label files), so that the scripts
read them exactly as they read the real data.
"""
import os

import library  # bench/, next to this file


def write_records(path, ds, count, seed):
  """Writes count records of random pixels and labels in ds's format.

  CIFAR's records start with their label bytes; an IDX image file gets its
  header, and its labels go into the label file beside it.
  """
  import struct
  import numpy as np
  idx = library.module('idx')
  rng = np.random.RandomState(seed)
  pixels = rng.randint(0, 256, size=(count, ds.image_bytes)).astype(np.uint8)
  labels = np.stack([rng.randint(0, n, size=count) for n in ds.label_classes],
                    axis=1).astype(np.uint8)
  if ds.labels_in_records:
    np.concatenate([labels, pixels], axis=1).tofile(path)
    return
  with open(path, 'wb') as f:
    f.write(struct.pack('>IIII', idx.IMAGES_MAGIC, count, ds.image_size,
                        ds.image_size))
    f.write(pixels.tobytes())
  with open(idx.labels_path(path), 'wb') as f:
    f.write(struct.pack('>II', idx.LABELS_MAGIC, count))
    f.write(labels[:, ds.label_byte].tobytes())


def write_dataset(data_dir, ds, train_records, test_records):
  batches = os.path.join(data_dir, ds.batches_dir)
  os.makedirs(batches)
  per_file = train_records // len(ds.train_files)
  for i, name in enumerate(ds.train_files):
    write_records(os.path.join(batches, name), ds, per_file, seed=i)
  write_records(os.path.join(batches, ds.eval_files[0]), ds, test_records,
                seed=99)
