"""The pipeline on real CIFAR-10 records: the exact subset built from ../shared.

The subset holds bit-exact prefixes of the official files (8,152 training and
1,017 test records). Its labels are checked against the published first labels
and against the official label list shipped beside it. Skipped when the
shared data is absent.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO
from cifar10lib.base.compat import tf   # TensorFlow, imported quietly, in graph mode
from cifar10lib.data import cifar10_input

SHARED = os.path.normpath(os.path.join(REPO, '..', 'shared'))
BUILD_TOOL = os.path.join(SHARED, 'tools', 'build_cifar10_data.py')
OFFICIAL_LABELS = os.path.join(SHARED, 'data', 'cifar10-official-labels.u8')

NUM_TRAIN = 8152
NUM_TEST = 1017
# Records per training file in the subset, and where each file starts in the
# official list of 50,000 training labels.
TRAIN_FILE_RECORDS = [4000, 1017, 1017, 1101, 1017]
OFFICIAL_FILE_RECORDS = 10000
# Published first labels (../shared/data/README.md).
FIRST_TEST_LABELS = [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]
FIRST_TRAIN_LABELS = [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]
READ_BATCH = 1000

pytestmark = pytest.mark.skipif(
    not os.path.isdir(SHARED),
    reason='%s is absent: no real CIFAR-10 data to check against' % SHARED)


@pytest.fixture(scope='module')
def exact_dir(tmp_path_factory):
  """Builds the exact subset once for this module; returns its data_dir."""
  dest = str(tmp_path_factory.mktemp('cifar10_exact'))
  subprocess.check_call([sys.executable, BUILD_TOOL, 'exact', dest],
                        stdout=subprocess.DEVNULL)
  return dest


def _read_all_labels(data_dir, eval_data):
  """Every label that inputs(num_epochs=1) yields, in order."""
  with tf.Graph().as_default():
    images, labels = cifar10_input.inputs(eval_data, data_dir, READ_BATCH,
                                          num_epochs=1)
    with tf.Session() as sess:
      sess.run(tf.local_variables_initializer())
      coord = tf.train.Coordinator()
      threads = tf.train.start_queue_runners(sess=sess, coord=coord)
      out = []
      try:
        while True:
          image_batch, label_batch = sess.run([images, labels])
          assert image_batch.shape[1:] == (24, 24, 3)
          assert np.all(np.isfinite(image_batch))
          out.append(label_batch)
      except tf.errors.OutOfRangeError:
        pass
      finally:
        coord.request_stop()
        coord.join(threads)
  return np.concatenate(out)


def _official_train_labels():
  """The official labels of the subset's training records, file by file."""
  official = np.fromfile(OFFICIAL_LABELS, dtype=np.uint8)
  return np.concatenate([
      official[i * OFFICIAL_FILE_RECORDS:i * OFFICIAL_FILE_RECORDS + n]
      for i, n in enumerate(TRAIN_FILE_RECORDS)])


def test_exact_subset_sizes_are_counted(exact_dir):
  train = cifar10_input.data_files(exact_dir, eval_data=False)
  test = cifar10_input.data_files(exact_dir, eval_data=True)
  assert cifar10_input.count_examples(train) == NUM_TRAIN
  assert cifar10_input.count_examples(test) == NUM_TEST


def test_pipeline_reads_every_test_record(exact_dir):
  labels = _read_all_labels(exact_dir, eval_data=True)
  assert len(labels) == NUM_TEST
  assert list(labels[:10]) == FIRST_TEST_LABELS
  official = np.fromfile(OFFICIAL_LABELS, dtype=np.uint8)
  np.testing.assert_array_equal(labels, official[50000:50000 + NUM_TEST])


def test_pipeline_reads_every_training_record(exact_dir):
  labels = _read_all_labels(exact_dir, eval_data=False)
  assert len(labels) == NUM_TRAIN
  assert list(labels[:10]) == FIRST_TRAIN_LABELS
  np.testing.assert_array_equal(labels, _official_train_labels())
