"""Classifies your own images with a trained model: the top classes of each.

    python cifar10_classify.py --checkpoint_dir=/tmp/cifar10_train cat.png ship.jpg

prints, per image, its --top_k classes with their softmax probabilities:

    cat.png: <class> (<probability>), <class> (<probability>), ...

Each image (PNG or JPEG, any size; GIF and BMP decode too) is decoded and
prepared by TensorFlow the way evaluation prepares the test images: scaled to
CIFAR-10's 32x32, cropped to the central 24x24, then standardized (or
centred by the training set's mean, --preprocessing). The model runs with the
moving averages of its weights, as in evaluation; the model flags (--model,
--dataset, --norm, --top_layers, --use_fp16, --preprocessing) must be those
it was trained with.
Class names come from <data_dir>/cifar-10-batches-bin/batches.meta.txt (with
--dataset=cifar100, cifar-100-binary/fine_label_names.txt or
coarse_label_names.txt), or are CIFAR-10's own (CIFAR-100's class numbers)
when that file is absent. A file that cannot be read or
decoded is reported on stderr and skipped; the exit status is then 1.

With --dataset=mnist an image of a digit (any size, colour or grey) is
turned grey, scaled to 28x28 and standardized; a dark digit on a light
background (a mean brightness above half) is inverted first, since MNIST's
digits are light on dark. The classes are the digits 0 to 9.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import os
import sys

from absl import flags

from cifar10lib.base.errors import UserError
from cifar10lib.checkpoints import checkpoints
from cifar10lib.cli import cli
from cifar10lib.cli import flag_groups
from cifar10lib.evaluation import classifying

FLAGS = flags.FLAGS
cli.define_flags('data', 'model', 'checkpoint', 'preprocessing', 'session')
flags.DEFINE_integer('top_k', 3, 'How many of the most likely classes to show '
                     '(at most the number of classes).', lower_bound=1,
                     upper_bound=flag_groups.MAX_INT64)

def main(argv, cfg):
  paths = argv[1:]
  if not paths:
    raise UserError('no image given; usage: %s [flags] IMAGE...'
                            % os.path.basename(argv[0]))
  resolution = checkpoints.resolve(cfg.checkpoint_dir)
  checkpoint = resolution.path
  if checkpoint is None:
    raise UserError('No checkpoint file found in --checkpoint_dir=%s%s' % (
        cfg.checkpoint_dir,
        '; ' + resolution.problem if resolution.problem else ''))
  if resolution.note:
    sys.stderr.write('Note: %s\n' % resolution.note)
  ds = cfg.dataset
  if FLAGS.top_k > ds.num_classes:
    raise UserError('--top_k=%d: the model has only %d classes'
                            % (FLAGS.top_k, ds.num_classes))
  names = classifying.class_names(cfg.data_dir, ds)
  classifier = classifying.Classifier(
      checkpoint, FLAGS.top_k, cfg.model_options(train=False), cfg.use_fp16,
      cli.session_config(cfg), cfg.preprocessing, ds,
      recorded=cli.options_to_read_with(cfg), full=cli.full_images(cfg),
      moving_average=cfg.moving_average)
  try:
    failed = classifying.classify(paths, classifier, names)
  finally:
    classifier.close()
  if failed:
    raise UserError('%d of %d images could not be classified'
                            % (failed, len(paths)))


if __name__ == '__main__':
  cli.run(main, describe=False, positional=True)
