"""What the scripts share as command-line programs: flags, errors, set-up.

Each script defines the flag
groups it uses, so that its --help lists only flags that do something there:

    cli.define_flags('data', 'download', 'model', 'session')

The flags of every group are defined once, in flag_groups.py; `run(main)`
parses them, turns them into one config.Config (config.py, the only library
module that reads flags) and calls main(argv, cfg). The functions below
build what the scripts share from that config. A UserError becomes one line
on stderr and exit status 1, a flag error one line and exit status 2.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import contextlib
import os
import signal
import sys

from absl import app
from absl import flags

from cifar10lib import models
from cifar10lib.base import script_help
from cifar10lib.base.compat import INTERRUPTED_STATUS
from cifar10lib.base.compat import tf
from cifar10lib.base.errors import UserError
from cifar10lib.checkpoints import directories
from cifar10lib.cli import config
from cifar10lib.cli import flag_groups
from cifar10lib.cli.flag_groups import (  # pylint: disable=unused-import
    define_flags, define_script_flags)
from cifar10lib.data import cifar10_input
from cifar10lib.data import datasets
from cifar10lib.evaluation import validation
from cifar10lib.training import cifar10
from cifar10lib.training import fast_training
from cifar10lib.training import precision as precision_lib
from cifar10lib.training import schedules
from cifar10lib.training import training

FLAGS = flags.FLAGS

# Bytes one example takes in an input queue: a 24x24x3 float32 image and
# its int32 label.
QUEUED_EXAMPLE_BYTES = cifar10_input.IMAGE_SIZE ** 2 * 3 * 4 + 4
# The batches an evaluation queue holds (cifar10_input.inputs).
EVAL_QUEUE_BATCHES = 4

def data_split(cfg, name):
  """The datasets.Split called name of cfg's data (--validation_examples).

  --batch_size is checked against it: training refuses a batch larger than
  its examples, and any script a batch whose input queue cannot fit in
  memory, before a graph is built.
  """
  split = datasets.split(cfg.data_dir, name, cfg.dataset,
                         cfg.validation_examples)
  _check_batch_size(cfg, split, name == 'train')
  return split


def _memory_bytes():
  """This machine's physical memory in bytes, or None where unknown."""
  try:
    return os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE')
  except (AttributeError, ValueError, OSError):
    return None


def _check_batch_size(cfg, split, train):
  """Raises UserError when --batch_size does not fit split or memory."""
  batch_size = cfg.batch_size
  if train and batch_size > split.num_examples:
    raise UserError('--batch_size=%d: larger than the %d training examples'
                    % (batch_size, split.num_examples))
  if train:
    fraction = cfg.min_fraction_of_examples_in_queue
    queued = int(split.num_examples * fraction) + 3 * batch_size
  else:
    queued = EVAL_QUEUE_BATCHES * batch_size
  # The queue, full, plus the batch taken out of it, on every tower.
  needed = (queued + batch_size) * cfg.towers * QUEUED_EXAMPLE_BYTES
  memory = _memory_bytes()
  if memory and needed > memory:
    raise UserError(
        '--batch_size=%d: its input queue%s alone would need %.1f GiB, more '
        'than the %.1f GiB of memory of this machine' % (
            batch_size, 's' if cfg.towers > 1 else '', needed / 2.0 ** 30,
            memory / 2.0 ** 30))


class _Stopped(KeyboardInterrupt):
  """SIGTERM or SIGHUP, raised where Ctrl-C's KeyboardInterrupt would be."""

  def __init__(self, signum):
    super(_Stopped, self).__init__(signum)
    self.signum = signum


@contextlib.contextmanager
def stop_signals_interrupt():
  """SIGTERM and SIGHUP end the block as Ctrl-C does: what cleans up after
  Ctrl-C (a download's partial file, the directories it made) runs for
  them too, and the script ends in one line with the shell's status."""
  def stop(signum, frame):
    del frame
    raise _Stopped(signum)
  previous = {}
  for sig in (signal.SIGTERM, signal.SIGHUP):
    if signal.getsignal(sig) == signal.SIG_DFL:
      previous[sig] = signal.signal(sig, stop)
  try:
    yield
  finally:
    for sig, handler in previous.items():
      signal.signal(sig, handler)


def maybe_download_and_extract(cfg):
  """Fetches cfg's dataset into --data_dir unless it is there (--data_url)."""
  with stop_signals_interrupt():
    cifar10.maybe_download_and_extract(
        cfg.data_dir, url=cfg.data_url, ds=cfg.dataset,
        deadline_secs=cfg.download_deadline_secs)


def distorted_inputs(cfg, split, mean=None, batch_size=None):
  """cifar10.distorted_inputs of split with cfg's batch, --use_fp16, queue.

  mean: the preprocessing's mean variable, if any (preprocessing.py);
  batch_size: the batch, if not --batch_size (all towers' together).
  """
  return cifar10.distorted_inputs(
      cfg.data_dir, batch_size or cfg.batch_size, cfg.use_fp16, split,
      min_fraction_of_examples_in_queue=cfg.min_fraction_of_examples_in_queue,
      mean=mean, augmentation=cfg.augmentation)


def full_images(cfg):
  """Whether evaluation keeps the whole image (--augmentation)."""
  return cfg.augmentation != cifar10_input.TUTORIAL_AUGMENTATION


def prepare_model(cfg, split):
  """Lets --model read the training data before its graph is built (the
  whitened networks' whitening); returns cfg with --max_steps from
  --epochs (or the recipe's) unless given."""
  models.prepare(cfg.model, split, cfg.preprocessing)
  if cfg.recipe.epochs and 'max_steps' not in cfg.given:
    steps = fast_training.total_steps(cfg.recipe.epochs, split.num_examples,
                                      cfg.batch_size * cfg.towers)
    cfg = cfg._replace(loop=cfg.loop._replace(max_steps=steps))
  return cfg


def validator(cfg, mean=None):
  """The validation.Validator that --lr_schedule=plateau evaluates, or None.

  Built after the training network, whose weights it shares; mean is the
  preprocessing's mean variable.
  """
  if cfg.schedule.name != schedules.PLATEAU:
    return None
  return validation.Validator(data_split(cfg, 'validation'), cfg.batch_size,
                              cfg.use_fp16, cfg.model_options(train=False),
                              mean)


def recorded_options(cfg):
  """The options of cfg that shape the graph or give the data their
  meaning, as a plain dict: a trainer records them beside its checkpoints,
  and the scripts compare theirs with the record (run_record.py)."""
  options = dict(model=cfg.model, norm=cfg.norm, top_layers=cfg.top_layers,
                 use_fp16=cfg.use_fp16, dataset=cfg.dataset.name,
                 preprocessing=cfg.preprocessing, precision=cfg.precision,
                 validation_examples=cfg.validation_examples,
                 augmentation=cfg.augmentation)
  if cfg.dataset.name == 'cifar100':  # its label byte 0 is coarse, 1 fine
    options['cifar100_labels'] = ('coarse', 'fine')[cfg.dataset.label_byte]
  return options


def moving_average(cfg):
  """Whether evaluation and export restore the weights' moving averages:
  --moving_average where the script has it and it was given, else the
  --model's default (the whitened networks keep none)."""
  if 'moving_average' in FLAGS and FLAGS['moving_average'].present:
    return FLAGS.moving_average
  return cfg.moving_average


def options_to_read_with(cfg, eval_data=None):
  """recorded_options(cfg) that evaluation and classification compare with
  a checkpoint directory's record.

  --use_fp16 may differ (the values are cast), and --validation_examples
  matters only to --eval_data=validation.
  """
  options = recorded_options(cfg)
  options.pop('use_fp16')
  if eval_data != 'validation':
    options.pop('validation_examples')
  return options


def exit_if_stopped():
  """Exits with a shell's status for the signal that stopped training
  (130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP), if one did, so that
  `train && evaluate` does not go on after an interrupted run."""
  if training.stopped_by:
    sys.exit(128 + int(getattr(signal, training.stopped_by)))


def start_line(cfg, split, train_dir=None):
  """The line a trainer prints before its first step, which takes a while.

  split is the training datasets.Split; train_dir, where this process
  writes (None for a worker that does not).
  """
  queued = int(split.num_examples * cfg.min_fraction_of_examples_in_queue)
  return ('Training on %d examples from %s%s; first step once the shuffling '
          'queue holds %d examples (--min_fraction_of_examples_in_queue).'
          % (split.num_examples, cfg.data_dir,
             ' into %s' % train_dir if train_dir else '', queued))


def session_config(cfg, **kwargs):
  """A ConfigProto with cfg's thread, XLA and precision options.

  kwargs are more fields.
  """
  kwargs.setdefault('log_device_placement', cfg.log_device_placement)
  config = tf.ConfigProto(
      intra_op_parallelism_threads=cfg.intra_op_threads,
      inter_op_parallelism_threads=cfg.inter_op_threads, **kwargs)
  if cfg.xla:
    config.graph_options.optimizer_options.global_jit_level = (
        tf.OptimizerOptions.ON_1)
  return precision_lib.configure(config, cfg.precision)


def epoch_examples(cfg, split):
  """Examples per epoch when the progress lines show the epoch, else None.

  Datasets beyond the tutorial's (MNIST) show it; CIFAR's keep the
  tutorial's line unless --log_epochs asks for it.
  """
  show = (cfg.log_epochs if cfg.log_epochs is not None
          else split.ds.log_epochs)
  return split.num_examples if show else None


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


def run_trainer(train, towers=None):
  """Runs a trainer: fetches the data, checks it, then --train_dir, then
  calls train(cfg, the training split).

  towers: a function giving the number of input queues once the flags are
  parsed (the multi-GPU trainer's --num_gpus). Bad data fails before
  --train_dir is made.
  """
  def main(argv, cfg):
    del argv
    maybe_download_and_extract(cfg)
    split = data_split(cfg, 'train')
    cfg = prepare_model(cfg, split)
    with directories.claim_train_dir(cfg.loop.train_dir):
      train(cfg, split)
    exit_if_stopped()
  run(main, towers)


def _warn(warning):
  sys.stderr.write('%s: warning: %s\n' % (os.path.basename(sys.argv[0]),
                                           warning))


def run(main, towers=None, describe=True, positional=False):
  """Runs main(argv, cfg) under absl, cfg the flags' config.Config.

  The configuration is built once, and the options given printed once
  unless describe is false (the classifier: its output is one line per
  image, for pipes). Flag
  errors and user errors are reported in one line without a traceback;
  anything else is a bug and keeps its traceback. Ctrl-C that main does
  not handle itself (during a download, say) ends in one line and status
  130 (SIGTERM and SIGHUP where they interrupt: 143 and 129). towers: see
  run_trainer. Unless positional (the images cifar10_classify.py takes), an
  argument that is not a flag is refused: `max_steps=5` without its dashes
  would otherwise be ignored. The loop options carry recorded_options(cfg).
  """
  # Float flags a script defines itself refuse NaN too.
  for name in list(FLAGS):
    if isinstance(FLAGS[name].parser, flags.FloatParser):
      flag_groups.require_finite(name)

  def parse(argv):
    if script_help.requested(argv[1:]):
      script_help.print_and_exit(argv)
    try:
      rest = FLAGS(argv)
    except flags.CantOpenFlagFileError as e:
      # absl's own words start "ERROR:: Unable to open flagfile: ".
      fail('--flagfile: cannot open it: %s'
           % str(e).split('flagfile: ', 1)[-1], 2)
    except flags.Error as e:
      sys.stderr.write('%s: error: %s\n' % (os.path.basename(argv[0]),
                                            _one_line(e)))
      sys.exit(2)
    if len(rest) > 1 and not positional:
      fail('unexpected argument %r: this script takes flags only, written '
           '--name=value (see --help)' % rest[1], 2)
    return rest

  def guarded(argv):
    try:
      cfg = config.from_flags(FLAGS, towers() if towers else 1, _warn)
      cfg = cfg._replace(loop=cfg.loop._replace(record=recorded_options(cfg)))
      described = cfg.describe() if describe else None
      if described:
        print(described, flush=True)
      return main(argv, cfg)
    except UserError as e:
      fail(e)
    except KeyboardInterrupt as e:
      signum = getattr(e, 'signum', None)
      if signum is None:
        fail('interrupted (SIGINT); stopped', INTERRUPTED_STATUS)
      fail('interrupted (%s); stopped' % signal.Signals(signum).name,
           128 + signum)

  app.run(guarded, flags_parser=parse)
