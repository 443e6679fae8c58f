"""Trains the CIFAR-10 model on one device (--dataset: or CIFAR-100, MNIST).

    python cifar10_train.py --train_dir=/tmp/cifar10_train --batch_size 128

Checkpoints and summaries go to --train_dir, where cifar10_eval.py and
TensorBoard pick them up. Unlike the original tutorial, --train_dir is never
deleted: a second start resumes from its latest checkpoint, and Ctrl-C or
SIGTERM stops after the current step with a checkpoint at that step.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

from cifar10lib.base.compat import tf
from cifar10lib.cli import cli
from cifar10lib.data import preprocessing
from cifar10lib.training import cifar10
from cifar10lib.training import schedules
from cifar10lib.training import training

cli.define_flags('data', 'download', 'split', 'batch', 'model', 'training',
                 'schedule', 'preprocessing', 'session')


def train(cfg, split):
  """Builds the single-device graph and trains it on split."""
  with training.new_graph(cfg.seed):
    global_step = tf.train.get_or_create_global_step()
    # The input pipeline stays on the CPU, whatever device runs the model.
    with tf.device('/cpu:0'):
      mean = preprocessing.mean_variable(cfg.preprocessing, split)
      images, labels = cli.distorted_inputs(cfg, split, mean)
    logits = cifar10.inference(images, **cfg.model_options())
    total_loss = cifar10.loss(logits, labels)
    train_op = cifar10.train(total_loss, global_step, split.num_examples,
                             cfg.batch_size, cfg.recipe,
                             precision=cfg.precision, schedule=cfg.schedule)
    training.run_training(train_op, total_loss, cfg.batch_size, cfg.loop,
                          cli.session_config(cfg),
                          hooks=schedules.training_hooks(
                              cfg.schedule, cfg.recipe, cfg.loop.train_dir,
                              split.num_examples / cfg.batch_size,
                              cli.validator(cfg, mean)),
                          examples_per_epoch=cli.epoch_examples(cfg, split),
                          start_line=cli.start_line(cfg, split,
                                                    cfg.loop.train_dir))


if __name__ == '__main__':
  cli.run_trainer(train)
