"""Trains the CIFAR-10 model on one device.

    python cifar10_train.py --train_dir=/tmp/cifar10_train --batch_size 128

Checkpoints and summaries go to --train_dir, where cifar10_eval.py and
TensorBoard pick them up. Unlike the original tutorial, --train_dir is never
deleted: a second start resumes from its latest checkpoint, and Ctrl-C or
SIGTERM stops after the current step with a checkpoint at that step.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

from absl import flags

import cli  # before anything imports TensorFlow: it quiets its start-up
import cifar10
from compat import tf
import training

FLAGS = flags.FLAGS
cli.define_flags('data', 'download', 'split', 'batch', 'model', 'training',
                 'session')


def train():
  """Builds the single-device graph and trains it."""
  split = cli.data_split('train')
  with training.new_graph(FLAGS.seed):
    global_step = tf.train.get_or_create_global_step()
    # The input pipeline stays on the CPU, whatever device runs the model.
    with tf.device('/cpu:0'):
      images, labels = cifar10.distorted_inputs(
          FLAGS.data_dir, FLAGS.batch_size, FLAGS.use_fp16, split,
          min_fraction_of_examples_in_queue=(
              FLAGS.min_fraction_of_examples_in_queue))
    logits = cifar10.inference(images, **cli.model_options())
    total_loss = cifar10.loss(logits, labels)
    train_op = cifar10.train(total_loss, global_step, split.num_examples,
                             FLAGS.batch_size, cli.recipe())
    training.run_training(train_op, total_loss, FLAGS.batch_size,
                          cli.loop_options(), cli.session_config())


def main(argv=None):
  del argv
  cli.maybe_download_and_extract()
  with training.claim_train_dir(FLAGS.train_dir):
    train()


if __name__ == '__main__':
  cli.run(main)
