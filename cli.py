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

import math
import os
import signal
import sys
import warnings

# The shell's status for a process ended by SIGINT (128 + 2).
INTERRUPTED_STATUS = 128 + signal.SIGINT


def _exit_interrupted(signum, frame):
  """Ctrl-C while TensorFlow loads: nothing has started, so leave quietly."""
  del signum, frame
  os._exit(INTERRUPTED_STATUS)  # pylint: disable=protected-access


# Installed before the slow TensorFlow import, so Ctrl-C there prints no
# traceback; Python's own handler comes back once the imports are done. A
# SIGINT ignored from the start (a background job of a script) stays so.
_SIGINT_DEFAULT = signal.getsignal(signal.SIGINT) is signal.default_int_handler
if _SIGINT_DEFAULT:
  signal.signal(signal.SIGINT, _exit_interrupted)

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
import download
from errors import UserError
import models
import precision as precision_lib
import preprocessing
import schedules
import training
import validation

if _SIGINT_DEFAULT:
  signal.signal(signal.SIGINT, signal.default_int_handler)

FLAGS = flags.FLAGS

# --batch_size's ceiling: the evaluation queue holds 4 batches and
# TensorFlow sizes its queues in int32.
MAX_BATCH_SIZE = (2 ** 31 - 1) // 4
# Bytes one example takes in an input queue: a 24x24x3 float32 image and
# its int32 label.
QUEUED_EXAMPLE_BYTES = cifar10_input.IMAGE_SIZE ** 2 * 3 * 4 + 4
# The batches an evaluation queue holds (cifar10_input.inputs).
EVAL_QUEUE_BATCHES = 4
# --intra_op_threads' and --inter_op_threads' ceiling: TensorFlow starts a
# pool of that many threads, and ConfigProto holds the number in an int32
# (past it, protobuf's ValueError).
MAX_THREADS = 1 << 16

# Every flag of a script, by group: (kind, name, default, help, bounds).
_GROUPS = {
    'data': [
        ('string', 'data_dir', datasets.DATA_DIR,
         'Path to the CIFAR-10 data directory.', {}),
        ('enum', 'dataset', 'cifar10',
         'The data: CIFAR-10 (cifar-10-batches-bin/ in --data_dir), '
         'CIFAR-100 (cifar-100-binary/) or MNIST (mnist/, its IDX files).', {'enum_values': list(datasets.NAMES)}),
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
         {'lower_bound': 1}),
    ],
    'split': [
        ('integer', 'validation_examples', 0,
         'Hold the last N training records out of training; cifar10_eval.py '
         '--eval_data=validation evaluates them (give it the same N).',
         {'lower_bound': 0}),
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
        ('boolean', 'log_epochs', None,
         'End each progress line with the epoch reached (default: with '
         '--dataset=mnist only; CIFAR keeps the tutorial\'s line).', {}),
        ('integer', 'seed', None,
         'Graph-level random seed: the same seed, data and flags give the '
         'same initial weights.', {}),
        ('integer', 'input_timeout_secs', training.INPUT_TIMEOUT_SECS,
         'Seconds a training step may wait for its input (or for a '
         'parameter server) before training stops with an error.',
         {'lower_bound': 1}),
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
     {'enum_values': list(schedules.SCHEDULES)}),
    ('float', 'restart_epochs', schedules.RESTART_EPOCHS,
     'Epochs per cycle of --lr_schedule=cosine_restarts.',
     {'lower_bound': 1e-6}),
    ('integer', 'plateau_eval_steps', schedules.PLATEAU_EVAL_STEPS,
     'Steps between evaluations of the --validation_examples held-out '
     'records with --lr_schedule=plateau.', {'lower_bound': 1}),
    ('integer', 'plateau_patience', schedules.PLATEAU_PATIENCE,
     'Evaluations in a row without a better validation precision after '
     'which --lr_schedule=plateau decays the rate.', {'lower_bound': 1}),
]
_GROUPS['preprocessing'] = [
    ('enum', 'preprocessing', preprocessing.STANDARDIZE,
     'Image normalization: "standardize" (the tutorial\'s, per image), '
     '"mean_image" or "channel_mean" (subtract the training set\'s mean '
     'image or per-channel mean, saved in the checkpoint); evaluation and '
     'classification need the one the model was trained with.',
     {'enum_values': list(preprocessing.MODES)}),
]

# Flags defined below belong to the script that asks for them: its --help
# lists them as its own.
flags.disclaim_key_flags()


def _finite(value):
  return value is None or math.isfinite(value)


_FINITE_CHECKED = set()


def _require_finite(name):
  """Refuses NaN and infinities for float flag name (absl's bounds let NaN by).

  No float flag here has a meaning for them: they would end in a
  TensorFlow error or a NaN loss far from the flag that caused it.
  """
  if name not in _FINITE_CHECKED:
    _FINITE_CHECKED.add(name)
    flags.register_validator(name, _finite, message='must be a finite number')


def define_flags(*groups):
  """Defines the flags of groups (keys of _GROUPS) and --verbose.

  A flag already defined (another script imported in the same process, as
  the tests do) is only declared a key flag of the caller. Every float flag
  refuses NaN and infinities.
  """
  specs = [spec for group in groups for spec in _GROUPS[group]]
  specs.append(('boolean', 'verbose', False,
                'Show TensorFlow\'s own log messages and warnings.', {}))
  for kind, name, default, help_text, extra in specs:
    if name not in FLAGS:
      getattr(flags, 'DEFINE_' + kind)(name=name, default=default,
                                       help=help_text, **extra)
    flags.declare_key_flag(name)
    if kind == 'float':
      _require_finite(name)


def dataset():
  """The datasets.Dataset that --dataset and --cifar100_labels name."""
  ds = datasets.dataset(FLAGS.dataset, FLAGS.cifar100_labels)
  if (ds.idx and 'preprocessing' in FLAGS and
      FLAGS.preprocessing != preprocessing.STANDARDIZE):
    raise UserError('--preprocessing=%s: MNIST\'s digits are standardized '
                    'only; use --preprocessing=%s' % (
                        FLAGS.preprocessing, preprocessing.STANDARDIZE))
  return ds


def data_split(name):
  """The datasets.Split called name of --data_dir (--validation_examples).

  --batch_size is checked against it: training refuses a batch larger than
  its examples, and any script a batch whose input queue cannot fit in
  memory, before a graph is built.
  """
  held_out = FLAGS.validation_examples if 'validation_examples' in FLAGS else 0
  split = datasets.split(FLAGS.data_dir, name, dataset(), held_out)
  if 'batch_size' in FLAGS:
    _check_batch_size(split, name == 'train')
  return split


def _memory_bytes():
  """This machine's physical memory in bytes, or None where unknown."""
  try:
    return os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE')
  except (AttributeError, ValueError, OSError):
    return None


def _check_batch_size(split, train):
  """Raises UserError when --batch_size does not fit split or memory."""
  batch_size = FLAGS.batch_size
  if train and batch_size > split.num_examples:
    raise UserError('--batch_size=%d: larger than the %d training examples'
                    % (batch_size, split.num_examples))
  if train:
    fraction = FLAGS.min_fraction_of_examples_in_queue
    queued = int(split.num_examples * fraction) + 3 * batch_size
  else:
    queued = EVAL_QUEUE_BATCHES * batch_size
  queues = FLAGS.num_gpus if 'num_gpus' in FLAGS else 1
  # The queue, full, plus the batch taken out of it, on every tower.
  needed = (queued + batch_size) * queues * QUEUED_EXAMPLE_BYTES
  memory = _memory_bytes()
  if memory and needed > memory:
    raise UserError(
        '--batch_size=%d: its input queue%s alone would need %.1f GiB, more '
        'than the %.1f GiB of memory of this machine' % (
            batch_size, 's' if queues > 1 else '', needed / 2.0 ** 30,
            memory / 2.0 ** 30))


def maybe_download_and_extract():
  """Fetches --dataset into --data_dir unless it is there (--data_url)."""
  cifar10.maybe_download_and_extract(
      FLAGS.data_dir, url=FLAGS.data_url, ds=dataset(),
      deadline_secs=FLAGS.download_deadline_secs)


def distorted_inputs(split, batch_size, mean=None):
  """cifar10.distorted_inputs of split with the flags' --use_fp16 and queue.

  mean: the preprocessing's mean variable, if any (preprocessing.py).
  """
  return cifar10.distorted_inputs(
      FLAGS.data_dir, batch_size, FLAGS.use_fp16, split,
      min_fraction_of_examples_in_queue=(
          FLAGS.min_fraction_of_examples_in_queue), mean=mean)


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


def schedule():
  """The schedules.Schedule of the schedule flags (--validation_examples)."""
  if (FLAGS.lr_schedule == schedules.PLATEAU
      and not FLAGS.validation_examples):
    raise UserError('--lr_schedule=plateau needs --validation_examples=N: '
                    'it evaluates the last N training records, held out')
  return schedules.Schedule(FLAGS.lr_schedule, FLAGS.restart_epochs,
                            FLAGS.plateau_eval_steps, FLAGS.plateau_patience,
                            FLAGS.learning_rate_decay_factor)


def validator(schedule, mean=None):
  """The validation.Validator that --lr_schedule=plateau evaluates, or None.

  Built after the training network, whose weights it shares; mean is the
  preprocessing's mean variable.
  """
  if schedule.name != schedules.PLATEAU:
    return None
  return validation.Validator(data_split('validation'), FLAGS.batch_size,
                              FLAGS.use_fp16, model_options(train=False), mean)


def loop_options():
  """The training.LoopOptions of the training flags."""
  return training.LoopOptions(
      FLAGS.train_dir, FLAGS.max_steps, FLAGS.log_frequency,
      FLAGS.save_checkpoint_secs, FLAGS.save_checkpoint_steps,
      FLAGS.save_summaries_steps, FLAGS.input_timeout_secs)


_warned = set()


def precision():
  """--precision, checked: UserError where it cannot run, warnings once."""
  for warning in precision_lib.check(FLAGS.precision):
    if warning not in _warned:
      _warned.add(warning)
      sys.stderr.write('%s: warning: %s\n' % (os.path.basename(sys.argv[0]),
                                               warning))
  return FLAGS.precision


def start_line(split, train_dir=None):
  """The line a trainer prints before its first step, which takes a while.

  split is the training datasets.Split; train_dir, where this process
  writes (None for a worker that does not).
  """
  queued = int(split.num_examples * FLAGS.min_fraction_of_examples_in_queue)
  return ('Training on %d examples from %s%s; first step once the shuffling '
          'queue holds %d examples (--min_fraction_of_examples_in_queue).'
          % (split.num_examples, FLAGS.data_dir,
             ' into %s' % train_dir if train_dir else '', queued))


def session_config(**kwargs):
  """A ConfigProto with the thread, XLA and precision flags.

  kwargs are more fields.
  """
  if 'log_device_placement' in FLAGS:
    kwargs.setdefault('log_device_placement', FLAGS.log_device_placement)
  config = tf.ConfigProto(
      intra_op_parallelism_threads=FLAGS.intra_op_threads,
      inter_op_parallelism_threads=FLAGS.inter_op_threads, **kwargs)
  if FLAGS.xla:
    config.graph_options.optimizer_options.global_jit_level = (
        tf.OptimizerOptions.ON_1)
  return precision_lib.configure(config, precision())


def _one_line(message):
  """message with its line breaks (TensorFlow's, urllib's) made spaces."""
  return ' '.join(line.strip() for line in str(message).splitlines()
                  if line.strip())


def fail(message, status=1):
  """Ends the script with message as one line on stderr, exit status 1."""
  sys.stderr.write('%s: error: %s\n' % (os.path.basename(sys.argv[0]),
                                        _one_line(message)))
  sys.exit(status)


def run_trainer(train):
  """Runs a trainer: fetches the data, checks it, then --train_dir, then
  calls train(the training split).

  Bad data fails before --train_dir is made.
  """
  def main(argv):
    del argv
    maybe_download_and_extract()
    split = data_split('train')
    with training.claim_train_dir(FLAGS.train_dir):
      train(split)
  run(main)


def epoch_examples(split):
  """Examples per epoch when the progress lines show the epoch, else None.

  MNIST's lines show it; CIFAR's keep the tutorial's line unless
  --log_epochs asks for it.
  """
  show = FLAGS.log_epochs if FLAGS.log_epochs is not None else split.ds.idx
  return split.num_examples if show else None


def run(main):
  """Runs main under absl, turning user mistakes into one line and exit 1.

  Flag errors and user errors are reported without a traceback; anything
  else is a bug and keeps its traceback. Ctrl-C that main does not handle
  itself (during a download, say) ends in one line and status 130.
  """
  # Float flags a script defines itself refuse NaN too.
  for flag in list(FLAGS._flags().values()):  # pylint: disable=protected-access
    if isinstance(flag.parser, flags.FloatParser):
      _require_finite(flag.name)

  def parse(argv):
    try:
      return FLAGS(argv)
    except flags.Error as e:
      sys.stderr.write('%s: error: %s\n' % (os.path.basename(argv[0]),
                                            _one_line(e)))
      sys.exit(2)

  def guarded(argv):
    try:
      return main(argv)
    except UserError as e:
      fail(e)
    except KeyboardInterrupt:
      fail('interrupted (SIGINT); stopped', INTERRUPTED_STATUS)

  app.run(guarded, flags_parser=parse)
