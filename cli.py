"""What the scripts share as command-line programs: flags, errors, set-up.

Import it before anything imports TensorFlow: it quiets TensorFlow's
start-up chatter unless --verbose is given. Each script defines the flag
groups it uses, so that its --help lists only flags that do something there:

    cli.define_flags('data', 'download', 'model', 'session')

The flags of every group are defined here, once; the functions below turn
them into the arguments the library takes (the library never reads flags).
`run(main)` runs a script's main, turning a UserError into one line on
stderr and exit status 1, and a flag error into one line and exit status 2.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import os
import sys
import warnings

# TensorFlow's C++ logging reads this once, at import time, so it is decided
# from the raw command line: quiet unless --verbose or the user's own setting.
VERBOSE = any(arg in ('--verbose', '--verbose=true', '--verbose=1')
              for arg in sys.argv[1:])


def _import_tensorflow_quietly():
  """Imports TensorFlow with its start-up chatter (CUDA probing) hidden.

  Current TensorFlow writes some of it to file descriptor 2 before its log
  level applies, so stderr is pointed at /dev/null for the import alone. An
  import error still raises, and its traceback prints once stderr is back.
  """
  if VERBOSE:
    import tensorflow.compat.v1  # pylint: disable=unused-import
    return
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
  warnings.filterwarnings('ignore', category=FutureWarning)
  warnings.filterwarnings('ignore', category=DeprecationWarning)
  sys.stderr.flush()
  saved = os.dup(2)
  devnull = os.open(os.devnull, os.O_WRONLY)
  os.dup2(devnull, 2)
  try:
    import tensorflow.compat.v1 as tf_v1
  finally:
    os.dup2(saved, 2)
    os.close(saved)
    os.close(devnull)
  tf_v1.get_logger().setLevel('ERROR')


_import_tensorflow_quietly()

# pylint: disable=wrong-import-position
from absl import app
from absl import flags

import cifar10
import cifar10_input
from compat import tf
import datasets
from errors import UserError
import models
import training

FLAGS = flags.FLAGS

# Every flag of a script, by group: (kind, name, default, help, bounds).
_GROUPS = {
    'data': [
        ('string', 'data_dir', datasets.DATA_DIR,
         'Path to the CIFAR-10 data directory.', {}),
        ('enum', 'dataset', 'cifar10',
         'The data: CIFAR-10 (cifar-10-batches-bin/ in --data_dir) or '
         'CIFAR-100 (cifar-100-binary/).', {'enum_values': list(datasets.NAMES)}),
        ('enum', 'cifar100_labels', 'fine',
         'With --dataset=cifar100: its 100 fine classes or its 20 coarse '
         'ones.', {'enum_values': ['fine', 'coarse']}),
    ],
    'download': [
        ('string', 'data_url', None,
         'Where to download the data from (default: the official URL, or '
         '$CIFAR10_DATA_URL when set).', {}),
    ],
    'split': [
        ('integer', 'validation_examples', 0,
         'Hold the last N training records out of training; cifar10_eval.py '
         '--eval_data=validation evaluates them (give it the same N).',
         {'lower_bound': 0}),
    ],
    'batch': [
        ('integer', 'batch_size', cifar10.BATCH_SIZE,
         'Number of images to process in a batch.', {'lower_bound': 1}),
    ],
    'model': [
        ('enum', 'model', cifar10.MODEL,
         'The network: the tutorial\'s, or one of models/ (see '
         'docs/networks.md), each adapted to 24x24 crops; each brings its own '
         'training recipe (--optimizer, --learning_rate, ...), which any of '
         'those flags given overrides. --norm, --top_layers and '
         '--dropout_keep_prob shape the tutorial\'s network only.',
         {'enum_values': [cifar10.MODEL] + sorted(models.NETWORKS)}),
        ('boolean', 'use_fp16', False, 'Train the model using fp16.', {}),
        ('enum', 'norm', cifar10.NORM,
         'Normalization: the tutorial\'s local response normalization after '
         'conv1 and conv2, batch normalization before the ReLU of conv1, '
         'conv2, local3 and local4, or none.',
         {'enum_values': list(cifar10.NORMS)}),
        ('enum', 'top_layers', cifar10.TOP_LAYERS,
         'local3 and local4 as the tutorial\'s fully connected layers, or as '
         'locally connected layers (unshared 3x3 filters at each position).',
         {'enum_values': list(cifar10.TOP_LAYER_KINDS)}),
    ],
    'training': [
        ('string', 'train_dir', '/tmp/cifar10_train',
         'Directory where to write event logs and checkpoints; training '
         'resumes from the latest checkpoint found there.', {}),
        ('integer', 'max_steps', 1000000, 'Number of batches to run.',
         {'lower_bound': 0}),
        ('integer', 'log_frequency', 10,
         'How often (in steps) to log results to the console.',
         {'lower_bound': 1}),
        ('integer', 'save_checkpoint_secs', 600,
         'Seconds between periodic checkpoints.', {'lower_bound': 1}),
        ('integer', 'save_checkpoint_steps', None,
         'Steps between periodic checkpoints; replaces '
         '--save_checkpoint_secs when set.', {'lower_bound': 1}),
        ('integer', 'save_summaries_steps', 100,
         'Steps between summaries written for TensorBoard.',
         {'lower_bound': 1}),
        ('integer', 'seed', None,
         'Graph-level random seed: the same seed, data and flags give the '
         'same initial weights.', {}),
        ('boolean', 'log_device_placement', False,
         'Whether to log device placement.', {}),
        ('float', 'min_fraction_of_examples_in_queue',
         cifar10_input.MIN_FRACTION_OF_EXAMPLES_IN_QUEUE,
         'Fraction of an epoch the shuffling queue holds before training '
         'starts; smaller starts sooner but shuffles less.',
         {'lower_bound': 0.0, 'upper_bound': 1.0}),
        ('float', 'dropout_keep_prob', cifar10.DROPOUT_KEEP_PROB,
         'Probability of keeping a unit of local3 and local4 in training; '
         '1.0 means no dropout.', {'lower_bound': 1e-6, 'upper_bound': 1.0}),
        ('enum', 'optimizer', None,
         'Training algorithm (default: the --model\'s recipe; "sgd", plain '
         'gradient descent, for the tutorial\'s).',
         {'enum_values': list(cifar10.OPTIMIZERS)}),
        ('float', 'learning_rate', None,
         'Initial learning rate (default: the --model\'s recipe; %s for the '
         'tutorial\'s; adam and rmsprop usually want about 0.001).'
         % cifar10.INITIAL_LEARNING_RATE, {'lower_bound': 0.0}),
        ('float', 'momentum', None,
         'Momentum of --optimizer=momentum and nesterov (default: the '
         '--model\'s recipe; %s for the tutorial\'s).' % cifar10.MOMENTUM,
         {'lower_bound': 0.0}),
        ('float', 'num_epochs_per_decay', None,
         'Epochs after which the learning rate decays (default: the '
         '--model\'s recipe; %s for the tutorial\'s).'
         % cifar10.NUM_EPOCHS_PER_DECAY, {'lower_bound': 1e-6}),
        ('float', 'learning_rate_decay_factor', None,
         'Factor applied to the learning rate at each decay (default: the '
         '--model\'s recipe; %s for the tutorial\'s).'
         % cifar10.LEARNING_RATE_DECAY_FACTOR, {'lower_bound': 0.0}),
    ],
    'checkpoint': [
        ('string', 'checkpoint_dir', '/tmp/cifar10_train',
         'Directory where to read model checkpoints.', {}),
    ],
    'session': [
        ('integer', 'intra_op_threads', 0,
         'Threads one TensorFlow op may use (0: TensorFlow decides, one per '
         'core available).', {'lower_bound': 0}),
        ('integer', 'inter_op_threads', 0,
         'TensorFlow ops run at the same time (0: TensorFlow decides).',
         {'lower_bound': 0}),
        ('boolean', 'xla', False,
         'Compile the graph with XLA\'s just-in-time compiler (opt-in; see '
         'docs/performance.md).', {}),
    ],
}

# Flags defined below belong to the script that asks for them: its --help
# lists them as its own.
flags.disclaim_key_flags()


def define_flags(*groups):
  """Defines the flags of groups (keys of _GROUPS) and --verbose.

  A flag already defined (another script imported in the same process, as
  the tests do) is only declared a key flag of the caller.
  """
  specs = [spec for group in groups for spec in _GROUPS[group]]
  specs.append(('boolean', 'verbose', False,
                'Show TensorFlow\'s own log messages and warnings.', {}))
  for kind, name, default, help_text, extra in specs:
    if name not in FLAGS:
      getattr(flags, 'DEFINE_' + kind)(name=name, default=default,
                                       help=help_text, **extra)
    flags.declare_key_flag(name)


def dataset():
  """The datasets.Dataset that --dataset and --cifar100_labels name."""
  return datasets.dataset(FLAGS.dataset, FLAGS.cifar100_labels)


def data_split(name):
  """The datasets.Split called name of --data_dir (--validation_examples)."""
  held_out = FLAGS.validation_examples if 'validation_examples' in FLAGS else 0
  return datasets.split(FLAGS.data_dir, name, dataset(), held_out)


def maybe_download_and_extract():
  """Fetches --dataset into --data_dir unless it is there (--data_url)."""
  cifar10.maybe_download_and_extract(FLAGS.data_dir, url=FLAGS.data_url,
                                     ds=dataset())


def model_options(train=True):
  """inference()'s keyword arguments from the model flags.

  Raises UserError when a flag shaping the tutorial's network is given with
  another --model, which would ignore it.
  """
  if FLAGS.model != cifar10.MODEL:
    given = [name for name in ('norm', 'top_layers', 'dropout_keep_prob')
             if name in FLAGS and FLAGS[name].present]
    if given:
      raise UserError('--%s shapes the tutorial\'s network only, not '
                      '--model=%s' % (given[0], FLAGS.model))
  options = dict(model=FLAGS.model, norm=FLAGS.norm,
                 top_layers=FLAGS.top_layers,
                 num_classes=dataset().num_classes)
  if train:
    options['dropout_keep_prob'] = FLAGS.dropout_keep_prob
  return options


def recipe():
  """The cifar10.Recipe of --model, with the training flags given instead.

  The tutorial's is cifar10.TUTORIAL_RECIPE; another network's is its
  module's (models.recipe), or the tutorial's where it has none.
  """
  base = cifar10.TUTORIAL_RECIPE._asdict()
  if FLAGS.model != cifar10.MODEL:
    base.update(models.recipe(FLAGS.model) or {})
  for field in cifar10.Recipe._fields:
    if getattr(FLAGS, field) is not None:
      base[field] = getattr(FLAGS, field)
  return cifar10.Recipe(**base)


def loop_options():
  """The training.LoopOptions of the training flags."""
  return training.LoopOptions(
      FLAGS.train_dir, FLAGS.max_steps, FLAGS.log_frequency,
      FLAGS.save_checkpoint_secs, FLAGS.save_checkpoint_steps,
      FLAGS.save_summaries_steps)


def session_config(**kwargs):
  """A ConfigProto with the thread and XLA flags; kwargs are more fields."""
  if 'log_device_placement' in FLAGS:
    kwargs.setdefault('log_device_placement', FLAGS.log_device_placement)
  config = tf.ConfigProto(
      intra_op_parallelism_threads=FLAGS.intra_op_threads,
      inter_op_parallelism_threads=FLAGS.inter_op_threads, **kwargs)
  if FLAGS.xla:
    config.graph_options.optimizer_options.global_jit_level = (
        tf.OptimizerOptions.ON_1)
  return config


def fail(message):
  """Ends the script with message as one line on stderr, exit status 1."""
  sys.stderr.write('%s: error: %s\n' % (os.path.basename(sys.argv[0]),
                                        message))
  sys.exit(1)


def run(main):
  """Runs main under absl, turning user mistakes into one line and exit 1.

  Flag errors and user errors are reported without a traceback; anything
  else is a bug and keeps its traceback.
  """
  def parse(argv):
    try:
      return FLAGS(argv)
    except flags.Error as e:
      sys.stderr.write('%s: error: %s\n' % (os.path.basename(argv[0]), e))
      sys.exit(2)

  def guarded(argv):
    try:
      return main(argv)
    except UserError as e:
      fail(e)

  app.run(guarded, flags_parser=parse)
