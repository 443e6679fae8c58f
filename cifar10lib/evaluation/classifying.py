"""Classifies your own images with a trained checkpoint.

`Classifier` builds the network once with a checkpoint's weights (their
moving averages, as evaluation uses) and scores one encoded PNG or JPEG at a
time; `prepare_image` turns such a file into the network's input exactly as
evaluation's preprocessing would. cifar10_classify.py turns its flags into
these calls.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import os
import sys

from cifar10lib.base.compat import tf
from cifar10lib.base.errors import UserError
from cifar10lib.checkpoints import checkpoints
from cifar10lib.checkpoints import run_record
from cifar10lib.data import cifar10_input
from cifar10lib.data import datasets
from cifar10lib.data import preprocessing
from cifar10lib.training import cifar10

def class_names(data_dir, ds=datasets.CIFAR10):
  """The names of the classes, in label order, from the data's meta file."""
  if ds.label_names is None:
    return [str(i) for i in range(ds.num_classes)]  # MNIST: the digits
  path = os.path.join(data_dir, ds.batches_dir, ds.label_names)
  if not os.path.isfile(path):
    if ds.class_names:
      sys.stderr.write('Note: no %s; using the %s class names.\n'
                       % (path, ds.title))
      return list(ds.class_names)
    sys.stderr.write('Note: no %s; naming the classes by number.\n' % path)
    return ['class %d' % i for i in range(ds.num_classes)]
  try:
    with open(path) as f:
      names = [line.strip() for line in f if line.strip()]
  except (IOError, OSError, UnicodeDecodeError) as e:
    raise UserError('%s: cannot read it: %s' % (path, e))
  if len(names) < ds.num_classes:
    raise UserError('%s: names %d classes, the model has %d'
                            % (path, len(names), ds.num_classes))
  return names[:ds.num_classes]


def _as_grey(image):
  """A decoded image as MNIST draws its digits: grey, light on dark."""
  image = tf.image.rgb_to_grayscale(tf.cast(image, tf.float32))
  return tf.cond(tf.reduce_mean(image) > 127.5, lambda: 255.0 - image,
                 lambda: image)


def decode_pixels(contents, ds=datasets.CIFAR10):
  """Decodes an encoded image into ds's float32 [32, 32, 3] pixels (0..255).

  MNIST: [28, 28, 1], a grey digit, light on dark.
  """
  image = tf.image.decode_image(contents, channels=3, expand_animations=False)
  if ds.depth == 1:
    image = _as_grey(image)
  size = ds.image_size
  # Area averaging shrinks a large photo without aliasing, and leaves a
  # 32x32 image (a CIFAR-10 picture) exactly as it is.
  return tf.image.resize_images(image, [size, size],
                                method=tf.image.ResizeMethod.AREA)


def prepare_image(contents, ds=datasets.CIFAR10, mean=None, full=False):
  """Decodes an encoded image into the model's [1, 24, 24, 3] input.

  Evaluation's own preprocessing (cifar10_input.eval_images, with the
  training set's mean when the model was trained with one) follows the
  scaling to CIFAR's 32x32 (MNIST: [1, 28, 28, 1], a grey digit). full:
  the whole image, for --augmentation=translate_flip's models.
  """
  return cifar10_input.eval_images(
      tf.expand_dims(decode_pixels(contents, ds), 0), ds, mean, full)


class Classifier(object):
  """The network with a checkpoint's weights, one encoded image at a time.

  model_options are inference()'s keyword arguments; config is the
  session's ConfigProto; preprocessing_mode is the model's (its mean comes
  from the checkpoint); recorded, when given, the options the checkpoint's
  directory must have recorded, if it has a record (run_record.py).
  full: see prepare_image; moving_average=False takes
  the raw weights (the whitened networks keep no moving averages).
  """

  def __init__(self, checkpoint, top_k, model_options=None, use_fp16=False,
               config=None, preprocessing_mode=preprocessing.STANDARDIZE,
               ds=datasets.CIFAR10, recorded=None, full=False,
               moving_average=True):
    self.graph = tf.Graph()
    with self.graph.as_default():
      self.contents = tf.placeholder(tf.string, [])
      images = prepare_image(self.contents, ds,
                             preprocessing.mean_variable(preprocessing_mode,
                                                         ds=ds), full)
      if use_fp16:
        images = tf.cast(images, tf.float16)
      logits = cifar10.inference(images, train=False, **(model_options or {}))
      probabilities = tf.nn.softmax(tf.cast(logits, tf.float32))[0]
      self.top = tf.nn.top_k(probabilities, top_k)
      # Values of another dtype (--use_fp16, a float global_step) are cast.
      var_list = checkpoints.checkpoint_var_list(
          checkpoint, cifar10.variables_to_restore(),
          {v.op.name: v for v in tf.global_variables()}, moving_average,
          cast=True)
      preprocessing.check_checkpoint(checkpoint, preprocessing_mode)
      # Last: the variables say more, where they differ.
      if recorded is not None:
        run_record.check(os.path.dirname(checkpoint) or '.', recorded)
    self.session = tf.Session(graph=self.graph, config=config)
    checkpoints.restore(self.session, checkpoint, var_list)

  def top_classes(self, contents):
    """Returns ([probability], [class index]) of the most likely classes.

    Raises tf.errors.InvalidArgumentError when contents is no image.
    """
    probabilities, indices = self.session.run(self.top,
                                              {self.contents: contents})
    return list(probabilities), list(indices)

  def close(self):
    self.session.close()


def classify(paths, classifier, names):
  """Prints each image's top classes; returns how many could not be read."""
  failed = 0
  for path in paths:
    try:
      with open(path, 'rb') as f:
        contents = f.read()
      probabilities, indices = classifier.top_classes(contents)
    except (IOError, OSError) as e:
      problem = 'cannot read it: %s' % (e.strerror or e)
    except tf.errors.InvalidArgumentError:
      problem = 'not an image (PNG or JPEG) that TensorFlow can decode'
    else:
      print('%s: %s' % (path, ', '.join(
          '%s (%.3f)' % (names[i], p) for p, i in zip(probabilities, indices))),
            flush=True)
      continue
    failed += 1
    sys.stderr.write('%s: error: %s: %s\n'
                     % (os.path.basename(sys.argv[0]), path, problem))
    sys.stderr.flush()
  return failed
