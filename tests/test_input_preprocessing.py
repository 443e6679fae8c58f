"""--preprocessing: the training set's mean image or channel means.

The means are checked against numpy's over the records written here; the
scripts run as a user runs them, on a few hundred records.
"""
import os
import re
import shutil

import numpy as np

from conftest import run_script
from fakes import write_dataset

from cifar10lib.base.compat import tf
from cifar10lib.data import cifar10_input
from cifar10lib.data import datasets
from cifar10lib.data import preprocessing

MEAN = 'preprocessing/mean'


def test_compute_mean_of_training_split(tmp_path):
  written = write_dataset(tmp_path / 'data')
  pixels = np.concatenate([r.pixels for r in written['train']]).astype(np.float64)
  # 300 records; the last 50 are held out for validation.
  split = datasets.split(str(tmp_path / 'data'), 'train',
                         validation_examples=50)
  image = preprocessing.compute_mean('mean_image', split)
  channels = preprocessing.compute_mean('channel_mean', split)
  assert image.shape == (32, 32, 3) and image.dtype == np.float32
  np.testing.assert_allclose(image, pixels[:250].mean(axis=0), rtol=1e-6)
  np.testing.assert_allclose(channels, pixels[:250].mean(axis=(0, 1, 2)),
                             rtol=1e-6)
  assert not np.allclose(image, pixels.mean(axis=0), rtol=1e-6)


def test_eval_images_subtracts_the_mean(tmp_path):
  rng = np.random.RandomState(1)
  images = rng.uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
  mean_image = rng.uniform(0, 255, (32, 32, 3)).astype(np.float32)
  channels = np.array([100., 120., 140.], np.float32)
  with tf.Graph().as_default(), tf.Session() as sess:
    by_image, by_channel, standardized = sess.run([
        cifar10_input.eval_images(tf.constant(images), mean=tf.constant(mean_image)),
        cifar10_input.eval_images(tf.constant(images), mean=tf.constant(channels)),
        cifar10_input.eval_images(tf.constant(images))])
  np.testing.assert_allclose(by_image, (images - mean_image)[:, 4:28, 4:28],
                             atol=1e-4)
  np.testing.assert_allclose(by_channel, (images - channels)[:, 4:28, 4:28],
                             atol=1e-4)
  # Without a mean: the tutorial's per-image standardization.
  np.testing.assert_allclose(standardized.mean(axis=(1, 2, 3)), 0, atol=1e-4)
  np.testing.assert_allclose(standardized.std(axis=(1, 2, 3)), 1, atol=1e-3)


def test_training_distortions_centre_without_standardizing():
  # Images equal to the mean are zeros once it is subtracted; brightness then
  # adds one delta in [-63, 63] to each, which contrast keeps (the image is
  # flat), and nothing standardizes it back to zeros.
  mean = np.random.RandomState(2).uniform(0, 255, (32, 32, 3)).astype(
      np.float32)
  with tf.Graph().as_default(), tf.Session() as sess:
    out = sess.run(cifar10_input._distort(  # pylint: disable=protected-access
        tf.constant(np.stack([mean] * 64)), datasets.CIFAR10,
        tf.constant(mean)))
  assert out.shape == (64, 24, 24, 3)
  flat = out.reshape(64, -1)
  np.testing.assert_allclose(flat, flat[:, :1] * np.ones_like(flat),
                             atol=1e-3)
  assert np.all(np.abs(flat[:, 0]) <= 63.001)
  assert np.std(flat[:, 0]) > 5


def _train(data_dir, train_dir, mode):
  return run_script(
      'cifar10_train.py', '--data_dir=' + data_dir, '--train_dir=' + train_dir,
      '--preprocessing=' + mode, '--validation_examples=50', '--max_steps=40',
      '--batch_size=20', '--learning_rate=0.001', '--log_frequency=100',
      '--min_fraction_of_examples_in_queue=0.1')


def _with_mean(checkpoint, mean, out_dir):
  """A copy of checkpoint in out_dir, its preprocessing/mean replaced."""
  reader = tf.train.load_checkpoint(checkpoint)
  with tf.Graph().as_default():
    variables = {}
    for name in reader.get_variable_to_shape_map():
      value = mean if name == MEAN else reader.get_tensor(name)
      variables[name] = tf.Variable(value, name='v%d' % len(variables))
    saver = tf.train.Saver(variables)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      return saver.save(sess, os.path.join(out_dir, 'model.ckpt'),
                        global_step=int(reader.get_tensor('global_step')))


def _png(pixels, path):
  with tf.Graph().as_default(), tf.Session() as sess:
    data = sess.run(tf.image.encode_png(tf.constant(pixels, tf.uint8)))
  with open(path, 'wb') as f:
    f.write(data)


def test_mean_is_saved_and_used_by_eval_and_classify(tmp_path):
  data_dir = str(tmp_path / 'data')
  written = write_dataset(data_dir, learnable=True)
  train_dir = str(tmp_path / 'train')
  _train(data_dir, train_dir, 'mean_image')
  checkpoint = tf.train.latest_checkpoint(train_dir)
  reader = tf.train.load_checkpoint(checkpoint)
  pixels = np.concatenate([r.pixels for r in written['train']]).astype(np.float64)
  expected = pixels[:250].mean(axis=0)
  np.testing.assert_allclose(reader.get_tensor(MEAN), expected, rtol=1e-6)
  # Not trained, not averaged.
  assert not reader.has_tensor(MEAN + '/ExponentialMovingAverage')

  def evaluate(checkpoint_dir, data=data_dir, *flags):
    result = run_script('cifar10_eval.py', '--data_dir=' + data,
                        '--checkpoint_dir=' + checkpoint_dir, '--run_once',
                        '--eval_dir=' + str(tmp_path / 'eval'), *flags,
                        check=False)
    return result

  result = evaluate(train_dir, data_dir, '--preprocessing=mean_image')
  assert result.returncode == 0, result.stderr
  correct = int(re.search(r'\((\d+)/100 correct', result.stdout).group(1))
  assert correct >= 80
  # Test images darker by 40 and a checkpoint whose mean is darker by 40:
  # the network sees the same inputs, if the mean is the checkpoint's.
  shifted_dir = str(tmp_path / 'shifted')
  labels, test_pixels = written['test'].labels, written['test'].pixels
  test_pixels = np.clip(test_pixels, 40, 255)
  write_dataset(shifted_dir, learnable=True)
  records = np.concatenate([labels[:, None].astype(np.uint8), (
      test_pixels - 40).transpose(0, 3, 1, 2).reshape(100, 3072)], axis=1)
  records.astype(np.uint8).tofile(
      os.path.join(shifted_dir, 'cifar-10-batches-bin', 'test_batch.bin'))
  clipped_dir = str(tmp_path / 'clipped')
  shutil.copytree(shifted_dir, clipped_dir)
  np.concatenate([labels[:, None].astype(np.uint8), test_pixels.transpose(
      0, 3, 1, 2).reshape(100, 3072)], axis=1).astype(np.uint8).tofile(
          os.path.join(clipped_dir, 'cifar-10-batches-bin', 'test_batch.bin'))
  darker_dir = str(tmp_path / 'darker')
  os.makedirs(darker_dir)
  # Exact in float32: (x - 40) - (m - 40) rounds as x - m does.
  _with_mean(checkpoint, reader.get_tensor(MEAN) - np.float32(40), darker_dir)
  original = evaluate(train_dir, clipped_dir, '--preprocessing=mean_image')
  darker = evaluate(darker_dir, shifted_dir, '--preprocessing=mean_image')
  count = r'precision @ 1 = [0-9.]+ \((\d+/100) correct'
  assert (re.search(count, darker.stdout).group(1)
          == re.search(count, original.stdout).group(1))

  # Trained with a mean, evaluated without the flag: an error, not a
  # precision of standardized images.
  result = evaluate(train_dir)
  assert result.returncode == 1
  assert '--preprocessing=mean_image' in result.stderr

  # classify: the same image through the darker checkpoint, darker by 40,
  # gets the same probabilities; through the original one, other ones.
  image = np.clip(written['test'][1][0], 40, 255)
  _png(image, str(tmp_path / 'image.png'))
  _png(image - 40, str(tmp_path / 'darker.png'))

  def classify(checkpoint_dir, name):
    result = run_script('cifar10_classify.py', '--data_dir=' + data_dir,
                        '--checkpoint_dir=' + checkpoint_dir,
                        '--preprocessing=mean_image', '--top_k=3',
                        str(tmp_path / name))
    return result.stdout.split(': ', 1)[1]

  as_trained = classify(train_dir, 'image.png')
  assert classify(darker_dir, 'darker.png') == as_trained
  assert classify(train_dir, 'darker.png') != as_trained


def test_channel_mean_training_and_mismatch(tmp_path):
  data_dir = str(tmp_path / 'data')
  written = write_dataset(data_dir)
  train_dir = str(tmp_path / 'train')
  _train(data_dir, train_dir, 'channel_mean')
  reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(train_dir))
  pixels = np.concatenate([r.pixels for r in written['train']]).astype(np.float64)
  np.testing.assert_allclose(reader.get_tensor(MEAN),
                             pixels[:250].mean(axis=(0, 1, 2)), rtol=1e-6)
  result = run_script('cifar10_eval.py', '--data_dir=' + data_dir,
                      '--checkpoint_dir=' + train_dir, '--run_once',
                      '--preprocessing=mean_image',
                      '--eval_dir=' + str(tmp_path / 'eval'), check=False)
  assert result.returncode == 1
  assert 'preprocessing/mean has shape [3] there' in result.stderr
  assert 'Traceback' not in result.stderr
