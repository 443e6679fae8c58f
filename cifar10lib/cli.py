"""What the scripts share as command-line programs: flags, errors, set-up.

Each script defines the flag
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

from absl import app
from absl import flags

from cifar10lib import cifar10
from cifar10lib import directories
from cifar10lib import cifar10_input
from cifar10lib.compat import INTERRUPTED_STATUS
from cifar10lib.compat import tf
from cifar10lib import datasets
from cifar10lib import flag_groups
from cifar10lib.flag_groups import define_flags  # pylint: disable=unused-import
from cifar10lib.errors import UserError
from cifar10lib import models
from cifar10lib import script_help
from cifar10lib import precision as precision_lib
from cifar10lib import preprocessing
from cifar10lib import schedules
from cifar10lib import training
from cifar10lib import validation

FLAGS = flags.FLAGS

# Bytes one example takes in an input queue: a 24x24x3 float32 image and
# its int32 label.
QUEUED_EXAMPLE_BYTES = cifar10_input.IMAGE_SIZE ** 2 * 3 * 4 + 4
# The batches an evaluation queue holds (cifar10_input.inputs).
EVAL_QUEUE_BATCHES = 4

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
                            recipe().learning_rate_decay_factor)


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


def _error_line(message):
  return '%s: error: %s\n' % (os.path.basename(sys.argv[0]),
                              _one_line(message))


def fail(message, status=1):
  """Ends the script with message as one line on stderr, exit status 1."""
  sys.stderr.write(_error_line(message))
  sys.exit(status)


def exit_now(message, status=1):
  """Like fail(), from any thread, and at once.

  For a thread that finds the main thread stuck in TensorFlow's runtime,
  where neither an exception nor sys.exit can reach it.
  """
  sys.stdout.flush()
  sys.stderr.write(_error_line(message))
  sys.stderr.flush()
  os._exit(status)  # pylint: disable=protected-access


def run_trainer(train):
  """Runs a trainer: fetches the data, checks it, then --train_dir, then
  calls train(the training split).

  Bad data fails before --train_dir is made.
  """
  def main(argv):
    del argv
    maybe_download_and_extract()
    split = data_split('train')
    with directories.claim_train_dir(FLAGS.train_dir):
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
      flag_groups.require_finite(flag.name)

  def parse(argv):
    if script_help.requested(argv[1:]):
      script_help.print_and_exit(argv)
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
