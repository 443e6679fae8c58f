"""Trains the CIFAR-10 model on several devices with synchronous updates.

    python cifar10_multi_gpu_train.py --num_gpus=2

One model replica ("tower") per device computes the loss and gradients of its
own batch; the gradients are averaged on the CPU, where the shared variables
live, and applied once per step. All towers dequeue from one input pipeline.
On a machine with fewer GPUs than asked, soft placement runs the rest on the
CPU; --tower_device=cpu puts the towers on that many CPU devices instead, to
try several towers on a machine without GPUs.

As with cifar10_train.py, checkpoints and summaries go to --train_dir, where
cifar10_eval.py and TensorBoard pick them up; a second start resumes from the
latest checkpoint there, and Ctrl-C or SIGTERM stops after the current step
with a checkpoint at that step.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

from absl import flags

from cifar10lib.base.compat import tf
from cifar10lib.cli import cli
from cifar10lib.data import preprocessing
from cifar10lib.training import cifar10
from cifar10lib.training import precision as precision_lib
from cifar10lib.training import schedules
from cifar10lib.training import towers
from cifar10lib.training import training

FLAGS = flags.FLAGS
# --num_gpus' ceiling: each tower is a copy of the model and its input
# queue; no machine here has more devices.
MAX_TOWERS = 1024
cli.define_flags('data', 'download', 'split', 'batch', 'model', 'training',
                 'schedule', 'preprocessing', 'session')
flags.DEFINE_integer('num_gpus', 1, 'How many GPUs (towers) to use.',
                     lower_bound=1, upper_bound=MAX_TOWERS)
flags.DEFINE_enum('tower_device', 'gpu', ['gpu', 'cpu'],
                  'Device type of the towers: "gpu", or "cpu" to run '
                  '--num_gpus towers on as many CPU devices.')


def train(cfg, split):
  """Builds the multi-tower graph and trains it on split."""
  num_towers = FLAGS.num_gpus
  found = precision_lib.gpu_count()
  devices = towers.tower_devices(num_towers, FLAGS.tower_device)
  print('Found %d GPU(s); placing %d tower(s) on %s%s.' % (
      found, num_towers, ', '.join(devices),
      ' (missing GPUs fall back to the CPU by soft placement)'
      if FLAGS.tower_device == 'gpu' and found < num_towers else ''),
        flush=True)
  with training.new_graph(cfg.seed), tf.device('/cpu:0'):
    global_step = tf.train.get_or_create_global_step()
    examples_per_step = cfg.batch_size * num_towers
    lr = cifar10.learning_rate(global_step, split.num_examples,
                               examples_per_step, cfg.recipe, cfg.schedule)
    mean = preprocessing.mean_variable(cfg.preprocessing, split)
    images, labels = cli.distorted_inputs(cfg, split, mean, examples_per_step)
    # One loss scale for all towers: apply_gradients checks their averaged
    # gradients against it.
    scale = precision_lib.loss_scale(cfg.precision)
    tower_grads, first_loss, deps = towers.build_towers(
        images, labels, num_towers, devices, cfg.model_options(), cfg.recipe,
        scale)
    grads = towers.average_gradients(tower_grads)
    train_op = cifar10.apply_gradients(grads, global_step, lr, cfg.recipe,
                                       dependencies=deps, loss_scale=scale)
    device_count = ({'CPU': num_towers} if FLAGS.tower_device == 'cpu'
                    else {})
    config = cli.session_config(cfg, allow_soft_placement=True,
                                device_count=device_count)
    training.run_training(train_op, first_loss, examples_per_step, cfg.loop,
                          config,
                          hooks=[towers.PlacementHook(num_towers)] +
                          schedules.training_hooks(
                              cfg.schedule, cfg.recipe, cfg.loop.train_dir,
                              split.num_examples / examples_per_step,
                              cli.validator(cfg, mean)),
                          examples_per_epoch=cli.epoch_examples(cfg, split),
                          start_line=cli.start_line(cfg, split,
                                                    cfg.loop.train_dir))


if __name__ == '__main__':
  cli.run_trainer(train, towers=lambda: FLAGS.num_gpus)
