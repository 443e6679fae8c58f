"""cifar10_export.py beyond the tutorial's CIFAR-10 network: a whitened
network (whole 32x32 images, the training set's channel statistics from the
checkpoint, the raw weights) and the tutorial's network on MNIST (uint8
[N, 28, 28, 1] digits; PNGs turned grey and, dark on light, inverted). Each
export, loaded with TensorFlow's own loader, gives the probabilities that
cifar10_classify.py prints for the same images.
"""
import os

import numpy as np
import pytest

import fakes
from conftest import run_script
from export_checks import PRINTED_TOLERANCE, SAME_TOLERANCE, classified
from fakes.images import make_digits
from cifar10lib.base.compat import tf

NAMES = fakes.CIFAR10.label_names['batches.meta.txt']
TIMEOUT = 400   # a bound against hangs on a loaded machine, not a timing


def _load_and_run(export_dir, images, paths):
  """{signature: {output: value}} of both signatures, loaded in a graph."""
  with tf.Graph().as_default(), tf.Session() as sess:
    meta = tf.saved_model.loader.load(sess, ['serve'], export_dir)
    results = {}
    for name, key, value in (
        ('serving_default', 'images', images),
        ('serving_bytes', 'image_bytes',
         [open(p, 'rb').read() for p in paths])):
      signature = meta.signature_def[name]
      results[name] = sess.run(
          {k: t.name for k, t in signature.outputs.items()},
          {signature.inputs[key].name: value})
      assert signature.inputs[key].dtype == (
          tf.uint8 if key == 'images' else tf.string).as_datatype_enum
  return results


def _cifar(tmp_path):
  data_dir = str(tmp_path / 'data')
  fakes.write_dataset(data_dir, train_per_file=8, test_records=10,
                      learnable=True)
  images = np.random.RandomState(3).randint(0, 256, [3, 32, 32, 3])
  odd = np.random.RandomState(4).randint(0, 256, [50, 41, 3])
  return data_dir, images.astype(np.uint8), odd, NAMES


def _mnist(tmp_path):
  data_dir = str(tmp_path / 'data')
  fakes.write_idx(data_dir, train=64, test=10, learnable=True)
  digits = make_digits([1, 4, 8], seed=5, learnable=True)[:, :, :, None]
  # A photo of a dark digit on white paper, slightly tinted, 56x42.
  odd = np.full([56, 42, 3], [250, 245, 235], np.uint8)
  odd[10:40, 15:24] = [40, 30, 30]
  return data_dir, digits, odd, [str(d) for d in range(10)]


@pytest.mark.parametrize('case,flags', [
    ('whitened_cnn', ['--model=whitened_cnn']),
    ('mnist', ['--dataset=mnist']),
])
def test_export_gives_the_classifiers_probabilities(case, flags, tmp_path):
  data_dir, images, odd, names = (_mnist if case == 'mnist' else _cifar)(
      tmp_path)
  train_dir = str(tmp_path / 'train')
  run_script('cifar10_train.py', '--data_dir', data_dir, '--train_dir',
             train_dir, '--batch_size=8', '--max_steps=2',
             '--min_fraction_of_examples_in_queue=0.1', *flags,
             timeout=TIMEOUT)
  export_dir = str(tmp_path / 'export' / '1')
  common = ['--data_dir', data_dir, '--checkpoint_dir', train_dir] + flags
  exported = run_script('cifar10_export.py', '--export_dir', export_dir,
                        *common, timeout=TIMEOUT)
  assert 'global step 2' in exported.stdout
  # PNGs of the uint8 images (grey ones as RGB), and the odd-sized photo.
  paths = [fakes.write_png(tmp_path / ('%d.png' % i),
                           np.repeat(image, 3 // image.shape[-1], axis=2))
           for i, image in enumerate(images)]
  paths.append(fakes.write_png(tmp_path / 'odd.png', odd))
  printed = classified(run_script('cifar10_classify.py', '--top_k=10',
                                  *common + paths, timeout=TIMEOUT), names)
  out = _load_and_run(export_dir, images, paths)
  by_images = out['serving_default']['probabilities']
  by_bytes = out['serving_bytes']['probabilities']
  assert by_images.shape == (len(images), 10)
  for i, path in enumerate(paths):
    if i < len(images):
      assert np.abs(by_images[i] - printed[path]).max() <= PRINTED_TOLERANCE
      # (MNIST: the PNG's grey is 0.9999 of the pixel; standardized away.)
      np.testing.assert_allclose(by_bytes[i], by_images[i],
                                 atol=SAME_TOLERANCE)
    assert np.abs(by_bytes[i] - printed[path]).max() <= PRINTED_TOLERANCE, (
        path, by_bytes[i], printed[path])
  assert (out['serving_default']['classes'] == by_images.argmax(axis=1)).all()
  if case == 'whitened_cnn':
    # The recipe keeps no moving averages: the raw weights, as evaluated.
    saved = fakes.read_checkpoint(os.path.join(export_dir, 'variables',
                                               'variables'))
    checkpoint = fakes.read_checkpoint(os.path.join(train_dir,
                                                    'model.ckpt-2'))
    for name in ('group1/conv1/weights', 'whiten/eigenvectors',
                 'preprocessing/mean'):
      np.testing.assert_array_equal(saved[name], checkpoint[name])
