"""bench/benchmark.py's options: what it measures, how often, on what data.

The parsing lives here, apart from the script, so that the tests can read
the options without importing the script; benchmark.py passes its own
docstring's first paragraph as the description --help shows.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import argparse
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

EVAL_EXAMPLES = 10000
# The official training sets' sizes, the default of --train_records.
TRAIN_EXAMPLES = {'cifar10': 50000, 'cifar100': 50000, 'mnist': 60000}
DATASETS = tuple(TRAIN_EXAMPLES)  # datasets.NAMES
ROWS = ('train', 'multi1', 'multi2', 'memory', 'eval')
PRECISIONS = ('float32', 'bfloat16', 'float16')  # precision.PRECISIONS
# What --quick stands for.
QUICK = ('--reps=1', '--steps=120', '--warmup_steps=40',
         '--train_records=10000', '--only=train,memory,eval')


def comma_list(allowed):
  """An argparse type: comma-separated values, each one of allowed."""
  def parse(text):
    values = [v for v in text.split(',') if v]
    if not values or set(values) - set(allowed):
      raise argparse.ArgumentTypeError('%r: choose from %s'
                                       % (text, ', '.join(allowed)))
    return values
  return parse


def parse_args(argv, description=None):
  """benchmark.py's options from argv (--quick expanded), with .rest: the
  arguments it does not know, for its worker processes; description: the
  text --help shows above the options."""
  parser = argparse.ArgumentParser(
      description=description,
      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--reps', type=int, default=3,
                      help='repetitions of every row (default 3)')
  parser.add_argument('--steps', type=int, default=400,
                      help='training steps per run (default 400)')
  parser.add_argument('--warmup_steps', type=int, default=100,
                      help='logged figures up to this step are left out of '
                      'the median (default 100)')
  parser.add_argument('--only', default=ROWS, type=comma_list(ROWS),
                      help='comma-separated subset of: %s (memory runs both '
                      'memory-fed rows; eval needs a checkpoint, so it '
                      'trains briefly when train is not chosen)'
                      % ', '.join(ROWS))
  parser.add_argument('--batch_size', type=int, default=128)
  parser.add_argument('--dataset', default='cifar10', choices=DATASETS,
                      help='the data set whose format and size the synthetic '
                      'data take, and --dataset of the scripts (default '
                      'cifar10)')
  parser.add_argument('--train_records', type=int, default=None,
                      help='synthetic training records (default: as many as '
                      'the real training set has)')
  parser.add_argument('--test_records', type=int, default=EVAL_EXAMPLES)
  parser.add_argument('--work_dir', default=None,
                      help='where data and checkpoints go (default: a new '
                      'temporary directory, removed afterwards)')
  parser.add_argument('--repo', default=REPO,
                      help='the checkout whose scripts are measured (default: '
                      'this one), e.g. an older one to compare with')
  parser.add_argument('--model', default='tutorial',
                      help='the network every row trains and evaluates '
                      '(--model of the scripts; default: the tutorial\'s)')
  parser.add_argument('--script_args', default='',
                      help='extra flags for every script run, e.g. "--xla"')
  parser.add_argument('--precision', default=['float32'],
                      type=comma_list(PRECISIONS),
                      help='comma-separated --precision values, e.g. '
                      '"float32,bfloat16": every row runs in each, in turn '
                      '(default float32)')
  parser.add_argument('--label', default='',
                      help='a word added to every row name, to tell runs '
                      'apart when comparing')
  parser.add_argument('--worker', choices=['memory', 'eval'],
                      help=argparse.SUPPRESS)
  parser.add_argument('--session', choices=['default', 'train'],
                      default='default', help=argparse.SUPPRESS)
  parser.add_argument('--quick', action='store_true',
                      help='a rough table in a few minutes: %s (any of '
                      'those options given as well wins)' % ' '.join(QUICK))
  args, rest = parser.parse_known_args(argv)
  if args.quick:
    given = set(arg.split('=')[0] for arg in argv)
    args, rest = parser.parse_known_args(
        [arg for arg in QUICK if arg.split('=')[0] not in given] + argv)
  args.rest = rest
  if args.train_records is None:
    args.train_records = TRAIN_EXAMPLES[args.dataset]
  return args
