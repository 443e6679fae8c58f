"""Every flag of every script, by group, defined once.

A script asks for the groups it uses (cli.define_flags), so that its --help
lists only the flags that do something there. The defaults are the
tutorial's; the help of each flag says what it changes.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import collections
import math

from absl import flags

from cifar10lib import models
from cifar10lib.data import cifar10_input
from cifar10lib.data import datasets
from cifar10lib.data import download
from cifar10lib.data import preprocessing
from cifar10lib.training import cifar10
from cifar10lib.training import precision as precision_lib
from cifar10lib.training import schedules
from cifar10lib.training import training

FLAGS = flags.FLAGS

# --batch_size's ceiling: the evaluation queue holds 4 batches and
# TensorFlow sizes its queues in int32.
MAX_BATCH_SIZE = (2 ** 31 - 1) // 4
# --intra_op_threads' and --inter_op_threads' ceiling: TensorFlow starts a
# pool of that many threads, and ConfigProto holds the number in an int32
# (past it, protobuf's ValueError).
MAX_THREADS = 1 << 16
# A wait in seconds: a year. Past it, Python's clocks overflow (sleeps,
# deadlines), and no wait of a run is meant to be that long.
MAX_SECS = 366 * 24 * 3600
# A step count: TensorFlow counts steps in int64.
MAX_STEPS = 2 ** 63 - 1
# A step interval: added to a step, it must still fit int64.
MAX_STEP_INTERVAL = 2 ** 62
# Epochs: the decay or restart period in steps (epochs times batches per
# epoch) must fit int64 for any data set here (at most 60,000 examples an
# epoch, batches of 1).
MAX_EPOCHS = 1e9
# A learning rate past this makes any network here diverge at once (a NaN
# loss); refusing it names the flag instead.
MAX_LEARNING_RATE = 1e6
# Any other count (--seed, --plateau_patience, ...): int64.
MAX_INT64 = 2 ** 63 - 1

# The ranges several flags share.
STEP_INTERVAL = {'lower_bound': 1, 'upper_bound': MAX_STEP_INTERVAL}
SECONDS = {'lower_bound': 1, 'upper_bound': MAX_SECS}
FRACTION = {'lower_bound': 0.0, 'upper_bound': 1.0}

# Every flag of a script, by group: (kind, name, default, help, bounds).
_GROUPS = {
    'data': [
        ('string', 'data_dir', datasets.DATA_DIR,
         'Path to the data directory: it holds cifar-10-batches-bin/, '
         'cifar-100-binary/ or mnist/ (see --dataset), downloaded there when '
         'missing.', {}),
        ('enum', 'dataset', 'cifar10',
         'The data: CIFAR-10 (cifar-10-batches-bin/ in --data_dir), '
         'CIFAR-100 (cifar-100-binary/) or MNIST (mnist/, its IDX files).', {'enum_values': list(datasets.DATASETS)}),
        ('enum', 'cifar100_labels', 'fine',
         'With --dataset=cifar100: its 100 fine classes or its 20 coarse '
         'ones.', {'enum_values': ['fine', 'coarse']}),
    ],
    'download': [
        ('string', 'data_url', None,
         'Where to download the data from (default: the official URL, or '
         '$CIFAR10_DATA_URL when set; for MNIST, the URL of the directory '
         'holding its four .gz files).', {}),
        ('integer', 'download_deadline_secs',
         download.DOWNLOAD_DEADLINE_SECS,
         'Seconds the download may take in all before it is given up.',
         SECONDS),
    ],
    'split': [
        ('integer', 'validation_examples', 0,
         'Hold the last N training records out of training; cifar10_eval.py '
         '--eval_data=validation evaluates them (give it the same N).',
         {'lower_bound': 0, 'upper_bound': MAX_INT64}),
    ],
    'batch': [
        ('integer', 'batch_size', cifar10.BATCH_SIZE,
         'Number of images to process in a batch.',
         {'lower_bound': 1, 'upper_bound': MAX_BATCH_SIZE}),
    ],
    'model': [
        ('enum', 'model', cifar10.MODEL,
         'The network: the tutorial\'s, or one of models/ (see '
         'docs/networks.md), each adapted to 24x24 crops; each brings its own '
         'training recipe (--optimizer, --learning_rate, ...), which any of '
         'those flags given overrides. --norm, --top_layers and '
         '--dropout_keep_prob shape the tutorial\'s network only.',
         {'enum_values': [cifar10.MODEL] + sorted(models.NETWORKS)}),
        ('boolean', 'use_fp16', False,
         'Train the model using fp16 (the tutorial\'s flag: variables, '
         'checkpoints and summaries in float16 too). --precision is the '
         'other way: reduced-precision arithmetic with float32 variables '
         'and checkpoints.', {}),
        ('enum', 'augmentation', cifar10_input.TUTORIAL_AUGMENTATION,
         'Input mode: "tutorial" (24x24 crops, flips, brightness and '
         'contrast; evaluation\'s central crop) or "translate_flip" (full '
         '32x32 images translated by up to 2 pixels, reflect-padded, and '
         'flipped alternately by epoch; evaluation sees them whole). '
         'Default: the --model\'s (translate_flip for the whitened '
         'networks); give the same to every script.',
         {'enum_values': list(cifar10_input.INPUT_MODES)}),
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
         {'lower_bound': 0, 'upper_bound': MAX_STEPS}),
        ('integer', 'log_frequency', 10,
         'How often (in steps) to log results to the console.',
         STEP_INTERVAL),
        ('integer', 'save_checkpoint_secs', 600,
         'Seconds between periodic checkpoints.',
         SECONDS),
        ('integer', 'save_checkpoint_steps', None,
         'Steps between periodic checkpoints; replaces '
         '--save_checkpoint_secs when set.',
         STEP_INTERVAL),
        ('integer', 'keep_checkpoints', training.KEEP_CHECKPOINTS,
         'How many of the latest checkpoints --train_dir keeps (0: every '
         'one; bench/time_to_accuracy.py evaluates them all afterwards).',
         {'lower_bound': 0, 'upper_bound': MAX_STEPS}),
        ('integer', 'save_summaries_steps', 100,
         'Steps between summaries written for TensorBoard.',
         STEP_INTERVAL),
        ('boolean', 'log_epochs', None,
         'End each progress line with the epoch reached (default: with '
         '--dataset=mnist only; CIFAR keeps the tutorial\'s line).', {}),
        ('integer', 'seed', None,
         'Graph-level random seed: the same seed, data and flags give the '
         'same initial weights.', {'lower_bound': 0, 'upper_bound': MAX_INT64}),
        ('integer', 'input_timeout_secs', training.INPUT_TIMEOUT_SECS,
         'Seconds a training step may wait for its input (or for a '
         'parameter server) before training stops with an error.',
         SECONDS),
        ('boolean', 'log_device_placement', False,
         'Whether to log device placement.', {}),
        ('float', 'min_fraction_of_examples_in_queue',
         cifar10_input.MIN_FRACTION_OF_EXAMPLES_IN_QUEUE,
         'Fraction of an epoch the shuffling queue holds before training '
         'starts; smaller starts sooner but shuffles less.',
         FRACTION),
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
         % cifar10.INITIAL_LEARNING_RATE,
         {'lower_bound': 0.0, 'upper_bound': MAX_LEARNING_RATE}),
        ('float', 'momentum', None,
         'Momentum of --optimizer=momentum and nesterov (default: the '
         '--model\'s recipe; %s for the tutorial\'s).' % cifar10.MOMENTUM,
         FRACTION),
        ('float', 'num_epochs_per_decay', None,
         'Epochs after which the learning rate decays (default: the '
         '--model\'s recipe; %s for the tutorial\'s).'
         % cifar10.NUM_EPOCHS_PER_DECAY,
         {'lower_bound': 1e-6, 'upper_bound': MAX_EPOCHS}),
        ('float', 'epochs', None,
         'Epochs to train: the default of --max_steps (rounded up), and '
         'the span of --optimizer=decoupled_nesterov\'s triangular rate '
         '(default: the --model\'s recipe; none for the tutorial\'s).',
         {'lower_bound': 1e-6, 'upper_bound': MAX_EPOCHS}),
        ('float', 'weight_decay', None,
         'Decoupled weight decay of --optimizer=decoupled_nesterov, per '
         '1,024 examples (default: the --model\'s recipe).',
         FRACTION),
        ('float', 'learning_rate_decay_factor', None,
         'Factor applied to the learning rate at each decay (default: the '
         '--model\'s recipe; %s for the tutorial\'s).'
         % cifar10.LEARNING_RATE_DECAY_FACTOR,
         FRACTION),
    ],
    'checkpoint': [
        ('string', 'checkpoint_dir', '/tmp/cifar10_train',
         'Directory where to read model checkpoints.', {}),
    ],
    'session': [
        ('integer', 'intra_op_threads', 0,
         'Threads one TensorFlow op may use (0: TensorFlow decides, one per '
         'core available).', {'lower_bound': 0, 'upper_bound': MAX_THREADS}),
        ('integer', 'inter_op_threads', 0,
         'TensorFlow ops run at the same time (0: TensorFlow decides).',
         {'lower_bound': 0, 'upper_bound': MAX_THREADS}),
        ('boolean', 'xla', False,
         'Compile the graph with XLA\'s just-in-time compiler (opt-in; see '
         'docs/performance.md).', {}),
        ('enum', 'precision', precision_lib.DEFAULT,
         'Arithmetic of the model; variables, checkpoints and summaries stay '
         'float32 (unlike --use_fp16): bfloat16 is oneDNN\'s mixed precision '
         'on CPUs (TensorFlow 2.x), float16 automatic mixed precision with '
         'loss scaling on GPUs.',
         {'enum_values': list(precision_lib.PRECISIONS)}),
    ],
}

# Beyond the tutorial: the rate schedules of schedules.py, the preprocessing
# of preprocessing.py. The defaults are the tutorial's.
_GROUPS['schedule'] = [
    ('enum', 'lr_schedule', schedules.STEP,
     'Learning-rate schedule: "step" (the tutorial\'s staircase), "plateau" '
     '(also times --learning_rate_decay_factor after --plateau_patience '
     'validation evaluations without improvement; needs '
     '--validation_examples) or "cosine_restarts" (a cosine from '
     '--learning_rate to zero every --restart_epochs epochs, each cycle\'s '
     'end kept as snapshot-<step>).',
     {'enum_values': list(schedules.RATES)}),
    ('float', 'restart_epochs', schedules.RESTART_EPOCHS,
     'Epochs per cycle of --lr_schedule=cosine_restarts.',
     {'lower_bound': 1e-6, 'upper_bound': MAX_EPOCHS}),
    ('integer', 'plateau_eval_steps', schedules.PLATEAU_EVAL_STEPS,
     'Steps between evaluations of the --validation_examples held-out '
     'records with --lr_schedule=plateau.',
     STEP_INTERVAL),
    ('integer', 'plateau_patience', schedules.PLATEAU_PATIENCE,
     'Evaluations in a row without a better validation precision after '
     'which --lr_schedule=plateau decays the rate.',
     {'lower_bound': 1, 'upper_bound': MAX_INT64}),
]
_GROUPS['preprocessing'] = [
    ('enum', 'preprocessing', preprocessing.STANDARDIZE,
     'Image normalization: "standardize" (the tutorial\'s, per image), '
     '"mean_image" or "channel_mean" (subtract the training set\'s mean '
     'image or per-channel mean, saved in the checkpoint); evaluation and '
     'classification need the one the model was trained with.',
     {'enum_values': list(preprocessing.MODES)}),
]

# Flags that a script reads itself (FLAGS.<name>), outside the Config, and
# that more than one script takes: (kind, name, default, help, bounds).
EXPORT_DIR = '/tmp/cifar10_export/1'
_SCRIPT_FLAGS = collections.OrderedDict((spec[1], spec) for spec in [
    ('boolean', 'moving_average', True,
     'Evaluate the moving averages of the weights, as the '
     'tutorial does; false evaluates the raw weights.', {}),
    ('integer', 'tta', 0,
     'Test-time augmentation on the logits: 0 none (the '
     'tutorial\'s evaluation), 1 each image and its mirror '
     'averaged, 2 that pair at 1/2 and the pairs of the image '
     'shifted a pixel up-left and down-right at 1/4 each.',
     {'lower_bound': 0, 'upper_bound': 2}),
    ('boolean', 'per_class', False,
     'Also print the precision @ 1 of each class and the class it is most '
     'often taken for, and write them and a confusion-matrix image to '
     'TensorBoard.', {}),
    ('string', 'export_dir', EXPORT_DIR,
     'Directory to write the SavedModel into; it must not exist unless '
     '--overwrite. TensorFlow Serving serves the highest numbered directory '
     'of its parent, hence the /1.', {}),
    ('boolean', 'overwrite', False,
     'Replace --export_dir when it holds an earlier export; the old one '
     'stays until the new one is complete.', {}),
    ('string', 'checkpoint_path', None,
     'The checkpoint to read (a prefix such as '
     '/tmp/cifar10_train/model.ckpt-5000, or a directory for its latest); '
     'replaces --checkpoint_dir.', {}),
])

# Flags defined below belong to the script that asks for them: its --help
# lists them as its own.
flags.disclaim_key_flags()


def _finite(value):
  return value is None or math.isfinite(value)


_FINITE_CHECKED = set()


def require_finite(name):
  """Refuses NaN and infinities for float flag name (absl's bounds let NaN by).

  No float flag here has a meaning for them: they would end in a
  TensorFlow error or a NaN loss far from the flag that caused it.
  """
  if name not in _FINITE_CHECKED:
    _FINITE_CHECKED.add(name)
    flags.register_validator(name, _finite, message='must be a finite number')


# The groups a script defined, in order; their flags are the script's.
_DEFINED = []
# --verbose, which every script has; compat.py reads it from the raw command
# line (TensorFlow's logging is set before flags are parsed).
_VERBOSE = ('boolean', 'verbose', False,
            'Show TensorFlow\'s own log messages and warnings.', {})


def define_flags(*groups):
  """Defines the flags of groups (keys of _GROUPS) and --verbose, once.

  Every float flag refuses NaN and infinities.
  """
  specs = [spec for group in groups for spec in _GROUPS[group]]
  if not _DEFINED:
    specs.append(_VERBOSE)
  _DEFINED.extend(groups)
  for kind, name, default, help_text, extra in specs:
    getattr(flags, 'DEFINE_' + kind)(name=name, default=default,
                                     help=help_text, **extra)
    flags.declare_key_flag(name)
    if kind == 'float':
      require_finite(name)


def define_script_flags(*names):
  """Defines the script's own flags called names (keys of _SCRIPT_FLAGS),
  which it reads from FLAGS itself; they stay out of the Config."""
  for name in names:
    kind, name, default, help_text, extra = _SCRIPT_FLAGS[name]
    getattr(flags, 'DEFINE_' + kind)(name=name, default=default,
                                     help=help_text, **extra)
    flags.declare_key_flag(name)


def defined_names():
  """The names of the flags of the groups the script defined."""
  return [spec[1] for group in _DEFINED for spec in _GROUPS[group]]


def defaults():
  """{name: default} for the flags of every group."""
  return {spec[1]: spec[2] for group in _GROUPS.values() for spec in group}
