"""MNIST's IDX files through the tutorial's pipeline, in-process.

The files are real IDX files (fakes.write_idx, small); a real
FixedLengthRecordReader reads them. One test reads the official test set
from ../shared/data/mnist when it is there.
"""
import collections
import gzip
import hashlib
import os

import numpy as np
import pytest

from conftest import REPO
import fakes
from fakes import idx_images_bytes, idx_labels_bytes, write_idx

from cifar10lib.base.compat import tf
from cifar10lib.base.errors import DataError
from cifar10lib.base.errors import DownloadError
from cifar10lib.base.errors import UserError
from cifar10lib.data import cifar10_input
from cifar10lib.data import datasets
from cifar10lib.data import download
from cifar10lib.data import idx
from cifar10lib.training import cifar10

MNIST = datasets.MNIST
SHARED = os.path.join(REPO, '..', 'shared')
SHARED_MNIST = os.path.join(SHARED, 'data', 'mnist')


# --- reading: image i carries label i -----------------------------------------

def read_all(filenames, records=None, batch=64):
  """Every (label, image [28, 28]) the pipeline's reader and decode give,
  one pass over filenames, in read order."""
  with tf.Graph().as_default():
    queue = tf.train.string_input_producer(filenames, num_epochs=1,
                                           shuffle=False)
    keys, values = cifar10_input._reader(MNIST).read_up_to(queue, batch)
    labels, images = cifar10_input.mnist_input.decode(
        keys, values, filenames, records, MNIST)
    out_labels, out_images = [], []
    with tf.Session() as sess:
      sess.run(tf.local_variables_initializer())
      coord = tf.train.Coordinator()
      threads = tf.train.start_queue_runners(sess, coord)
      try:
        while True:
          l, i = sess.run([labels, images])
          out_labels.append(l)
          out_images.append(i)
      except tf.errors.OutOfRangeError:
        pass
      coord.request_stop()
      coord.join(threads)
  return (np.concatenate(out_labels),
          np.concatenate(out_images)[..., 0].astype(np.uint8))


def test_image_i_gets_label_i_across_files(tmp_path):
  data = write_idx(tmp_path, train=300, test=130)
  files = (datasets.data_files(str(tmp_path), False, MNIST) +
           datasets.data_files(str(tmp_path), True, MNIST))
  labels, images = read_all(files, batch=47)   # reads straddle the files
  want_labels = np.concatenate([data['train'][0], data['test'][0]])
  want_images = np.concatenate([data['train'][1], data['test'][1]])
  assert len(labels) == 430
  np.testing.assert_array_equal(labels, want_labels)
  np.testing.assert_array_equal(images, want_images)


def test_record_range_keeps_labels_with_their_images(tmp_path):
  data = write_idx(tmp_path, train=300)
  files = datasets.data_files(str(tmp_path), False, MNIST)
  labels, images = read_all(files, records=(250, 300), batch=64)
  np.testing.assert_array_equal(labels, data['train'][0][250:])
  np.testing.assert_array_equal(images, data['train'][1][250:])


def test_validation_split_like_cifar(tmp_path):
  write_idx(tmp_path, train=300)
  train = datasets.split(str(tmp_path), 'train', MNIST, 50)
  val = datasets.split(str(tmp_path), 'validation', MNIST, 50)
  assert (train.records, train.num_examples) == ((0, 250), 250)
  assert (val.records, val.num_examples) == ((250, 300), 50)
  with pytest.raises(UserError, match="must be less"):
    datasets.split(str(tmp_path), 'train', MNIST, 300)


@pytest.mark.skipif(not os.path.isdir(SHARED_MNIST),
                    reason='no ../shared/data/mnist beside the repository: '
                           'the real-IDX test needs the official test files')
def test_real_idx_bytes_image_i_label_i(tmp_path):
  """The official 10,000 test images, each with its official label."""
  target = tmp_path / 'mnist'
  target.mkdir()
  for name in ('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'):
    with open(os.path.join(SHARED_MNIST, name + '.gz'), 'rb') as f:
      raw = f.read()
    assert hashlib.md5(raw).hexdigest() == MNIST.md5[name + '.gz']
    (target / name).write_bytes(gzip.decompress(raw))
  path = str(target / 't10k-images-idx3-ubyte')
  assert datasets.count_examples([path], MNIST) == 10000
  labels, images = read_all([path], batch=500)
  raw = np.fromfile(path, np.uint8, offset=16).reshape(10000, 28, 28)
  want = np.fromfile(str(target / 't10k-labels-idx1-ubyte'), np.uint8,
                     offset=8)
  np.testing.assert_array_equal(images, raw)
  np.testing.assert_array_equal(labels, want)
  assert list(want[:5]) == [7, 2, 1, 0, 4]      # the well-known first digits


# --- bad IDX files: one line naming the file ----------------------------------

def _corrupt(tmp_path, name, data):
  write_idx(tmp_path)
  path = os.path.join(str(tmp_path), 'mnist', name)
  with open(path, 'wb') as f:
    f.write(data)
  return path


@pytest.mark.parametrize('name,data,message', [
    ('train-images-idx3-ubyte', idx_labels_bytes([1, 2]),
     'not an IDX image file (magic number 2049, expected 2051)'),
    ('train-labels-idx1-ubyte', idx_images_bytes(np.zeros((300, 28, 28))),
     'not an IDX label file (magic number 2051, expected 2049)'),
    ('train-images-idx3-ubyte',
     idx_images_bytes(np.zeros((300, 28, 28)))[:-100],
     'truncated IDX file: its header says 300 images'),
    ('train-images-idx3-ubyte', b'\0\0\x08', 'shorter than its 16-byte'),
    ('train-images-idx3-ubyte', idx_images_bytes(np.zeros((300, 32, 32))),
     'images are 32x32, expected 28x28'),
    ('train-labels-idx1-ubyte', idx_labels_bytes(np.zeros(299)),
     'holds 299 labels, its image file 300 images'),
    ('train-labels-idx1-ubyte', idx_labels_bytes([3] * 299 + [10]),
     'label 299 is 10, outside 0..9'),
])
def test_bad_idx_file_is_one_line_naming_it(tmp_path, name, data, message):
  path = _corrupt(tmp_path, name, data)
  with pytest.raises(DataError) as e:
    datasets.split(str(tmp_path), 'train', MNIST)
  assert str(e.value).startswith(path + ': ')
  assert message in str(e.value)
  assert '\n' not in str(e.value)


def test_missing_label_file(tmp_path):
  write_idx(tmp_path)
  path = os.path.join(str(tmp_path), 'mnist', 't10k-labels-idx1-ubyte')
  os.remove(path)
  with pytest.raises(DataError, match='^%s: file not found$' % path):
    datasets.split(str(tmp_path), 'test', MNIST)


# --- models ------------------------------------------------------------------

def _shapes():
  return {v.op.name: v.shape.as_list() for v in tf.global_variables()}


def test_tutorial_cnn_on_one_channel():
  with tf.Graph().as_default():
    logits = cifar10.inference(tf.zeros([2, 28, 28, 1]))
    assert logits.shape.as_list() == [2, 10]
    shapes = _shapes()
  assert shapes['conv1/weights'] == [5, 5, 1, 64]
  assert shapes['local3/weights'] == [7 * 7 * 64, 384]
  assert shapes['softmax_linear/weights'] == [192, 10]


def test_softmax_regression_on_784_pixels():
  with tf.Graph().as_default():
    logits = cifar10.inference(tf.ones([3, 28, 28, 1]), model='softmax')
    shapes = _shapes()
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      values = sess.run(logits)
  assert shapes == {'softmax_linear/weights': [784, 10],
                    'softmax_linear/biases': [10]}
  np.testing.assert_array_equal(values, np.zeros([3, 10]))  # zero start


def test_training_batches_are_28x28x1_standardized_digits(tmp_path):
  write_idx(tmp_path, train=300)
  with tf.Graph().as_default():
    split = datasets.split(str(tmp_path), 'train', MNIST)
    images, labels = cifar10.distorted_inputs(str(tmp_path), 16, split=split,
                                              num_threads=1)
    assert images.shape.as_list() == [16, 28, 28, 1]
    with tf.train.MonitoredSession() as sess:
      i, l = sess.run([images, labels])
  np.testing.assert_allclose(i.mean(axis=(1, 2, 3)), 0, atol=1e-4)
  np.testing.assert_allclose(i.std(axis=(1, 2, 3)), 1, atol=1e-3)
  assert set(l) <= set(range(10))


# --- download: a real HTTP server on 127.0.0.1 ---------------------------------

@pytest.fixture
def served(tmp_path):
  """Four small .gz files served at url + 'good/'; ds has their MD5s."""
  root = tmp_path / 'www'
  data = write_idx(root / 'good', gz=True)
  md5s = collections.OrderedDict(
      (name, hashlib.md5((root / 'good' / name).read_bytes()).hexdigest())
      for name in MNIST.md5)
  with fakes.DownloadServer() as server:
    for name in md5s:
      server.serve('/good/' + name, (root / 'good' / name).read_bytes())
    yield server, MNIST._replace(md5=md5s), data


def test_download_verifies_unzips_and_keeps_gz(tmp_path, served):
  server, ds, data = served
  data_dir = str(tmp_path / 'data')
  download.maybe_download_and_extract(data_dir, server.url('/good/'), ds=ds)
  assert sorted(os.listdir(data_dir)) == sorted(list(ds.md5) + ['mnist'])
  assert sorted(os.listdir(os.path.join(data_dir, 'mnist'))) == sorted(
      name[:-3] for name in ds.md5)
  labels, images = read_all(datasets.data_files(data_dir, True, ds))
  np.testing.assert_array_equal(labels, data['test'][0])
  np.testing.assert_array_equal(images, data['test'][1])


def test_download_falls_back_to_the_mirror(tmp_path, served):
  server, ds, _ = served
  ds = ds._replace(url=server.url('/missing/'),
                   mirrors=(server.url('/good/'),))
  data_dir = str(tmp_path / 'data')
  download.maybe_download_and_extract(data_dir, ds=ds)
  assert len(os.listdir(os.path.join(data_dir, 'mnist'))) == 4


def test_download_bad_md5_leaves_nothing(tmp_path, served):
  server, ds, _ = served
  ds = ds._replace(md5=collections.OrderedDict(
      (name, md5 if 'labels' not in name or 't10k' not in name else '0' * 32)
      for name, md5 in ds.md5.items()))
  data_dir = str(tmp_path / 'new' / 'data')
  with pytest.raises(DownloadError) as e:
    download.maybe_download_and_extract(data_dir, server.url('/good/'), ds=ds)
  message = str(e.value)
  assert 't10k-labels-idx1-ubyte.gz: checksum mismatch' in message
  assert '\n' not in message
  assert not os.path.exists(str(tmp_path / 'new'))


def test_download_bad_idx_inside_gz_leaves_nothing(tmp_path, served):
  server, ds, _ = served
  bad = tmp_path / 'www' / 'good' / 'train-labels-idx1-ubyte.gz'
  with gzip.open(str(bad), 'wb') as f:
    f.write(idx_labels_bytes(np.zeros(7)))
  server.serve('/good/' + bad.name, bad.read_bytes())
  ds = ds._replace(md5=collections.OrderedDict(
      (name, hashlib.md5((tmp_path / 'www' / 'good' / name).read_bytes())
       .hexdigest()) for name in ds.md5))
  data_dir = tmp_path / 'data'
  data_dir.mkdir()
  with pytest.raises(DownloadError, match='train-labels-idx1-ubyte: holds 7 '
                     'labels, its image file 300 images'):
    download.maybe_download_and_extract(str(data_dir), server.url('/good/'),
                                        ds=ds)
  assert os.listdir(str(data_dir)) == []


def test_verified_gz_files_are_not_fetched_again(tmp_path, served):
  server, ds, _ = served
  data_dir = tmp_path / 'data'
  data_dir.mkdir()
  for name in ds.md5:
    (data_dir / name).write_bytes(
        (tmp_path / 'www' / 'good' / name).read_bytes())
  # Nothing is served there: only the local files can succeed.
  download.maybe_download_and_extract(str(data_dir), server.url('/none/'),
                                      ds=ds)
  assert len(os.listdir(str(data_dir / 'mnist'))) == 4
