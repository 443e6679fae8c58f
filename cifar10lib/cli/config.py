"""A run's configuration: the command line read once, checked, passed down.

A script builds it once, right after absl has parsed the command line, and
hands it (or the part a function needs) to the library:

    cfg = config.from_flags(flags.FLAGS)
    logits = cifar10.inference(images, **cfg.model_options())

This is the one library module that reads flags, and it reads only the
groups the script defined (flag_groups.define_flags); the others take their
defaults, which are the tutorial's. Everything a flag decides is here, once:
the dataset, the network's options, the training recipe (the --model's,
with the training flags given on top), the schedule, the loop, the session.
`build` makes the same object from a plain dict, which the tests use.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import collections

from cifar10lib import models
from cifar10lib.base.errors import UserError
from cifar10lib.cli import flag_groups
from cifar10lib.data import datasets
from cifar10lib.training import cifar10
from cifar10lib.training import fast_training
from cifar10lib.training import precision as precision_lib
from cifar10lib.training import schedules
from cifar10lib.training import training

# Flags that shape the tutorial's network only: another --model refuses them.
TUTORIAL_ONLY = ('norm', 'top_layers', 'dropout_keep_prob')


class Config(collections.namedtuple('Config', [
    'data_dir', 'dataset', 'data_url', 'download_deadline_secs',
    'validation_examples', 'batch_size', 'min_fraction_of_examples_in_queue',
    'preprocessing', 'model', 'norm', 'top_layers', 'dropout_keep_prob',
    'use_fp16', 'recipe', 'schedule', 'loop', 'seed', 'log_epochs',
    'log_device_placement', 'checkpoint_dir', 'intra_op_threads',
    'inter_op_threads', 'xla', 'precision', 'towers', 'given',
    'augmentation', 'moving_average'])):
  """Every option of a run, checked. See the flags' help for each field.

  dataset is a datasets.Dataset; recipe a cifar10.Recipe; schedule a
  schedules.Schedule; loop a training.LoopOptions. towers is the number of
  input queues (the multi-GPU trainer's towers, else 1). given maps the
  options named on the command line to their values, for describe().
  moving_average: whether evaluation takes the weights' moving averages
  by default (the whitened networks keep none).
  """

  def model_options(self, train=True):
    """inference()'s keyword arguments."""
    options = dict(model=self.model, norm=self.norm,
                   top_layers=self.top_layers,
                   num_classes=self.dataset.num_classes)
    if train:
      options['dropout_keep_prob'] = self.dropout_keep_prob
    return options

  def describe(self):
    """One line with the options given on the command line, or None."""
    if not self.given:
      return None
    return 'Options: ' + ', '.join(
        '%s=%s' % (name, value) for name, value in sorted(self.given.items()))


def _recipe(values):
  """The --model's recipe (the tutorial's where it has none), flags on top."""
  base = cifar10.TUTORIAL_RECIPE._asdict()
  if values['model'] != cifar10.MODEL:
    base.update(models.recipe(values['model']) or {})
  for field in cifar10.Recipe._fields:
    if values.get(field) is not None:
      base[field] = values[field]
  return cifar10.Recipe(**base)


def _check_recipe(recipe):
  if recipe.weight_decay is not None and recipe.optimizer != (
      fast_training.NAME):
    raise UserError('--weight_decay is --optimizer=%s\'s; --optimizer=%s '
                    'takes the network\'s own' % (fast_training.NAME,
                                                   recipe.optimizer))
  if recipe.optimizer == fast_training.NAME:
    missing = [f for f in ('epochs', 'weight_decay')
               if getattr(recipe, f) is None]
    if missing:
      raise UserError('--optimizer=%s needs --%s' % (fast_training.NAME,
                                                      missing[0]))


def _dataset(values):
  ds = datasets.dataset(values['dataset'], values['cifar100_labels'])
  modes = ds.preprocessing_modes
  if modes is not None and values['preprocessing'] not in modes:
    raise UserError('--preprocessing=%s: --dataset=%s takes %s only' % (
        values['preprocessing'], ds.name,
        ' or '.join('--preprocessing=%s' % m for m in modes)))
  return ds


def _schedule(values):
  if (values['lr_schedule'] == schedules.PLATEAU
      and not values['validation_examples']):
    raise UserError('--lr_schedule=plateau needs --validation_examples=N: '
                    'it evaluates the last N training records, held out')
  return schedules.Schedule(values['lr_schedule'], values['restart_epochs'],
                            values['plateau_eval_steps'],
                            values['plateau_patience'])


def _check_model_flags(values, given):
  if values['model'] != cifar10.MODEL:
    named = [name for name in TUTORIAL_ONLY if name in given]
    if named:
      raise UserError('--%s shapes the tutorial\'s network only, not '
                      '--model=%s' % (named[0], values['model']))


def build(values=None, given=(), towers=1, warn=None):
  """The Config of values ({flag name: value}; missing ones: defaults).

  given: the names of the flags named on the command line. warn, when
  given, is called with each warning of the precision check. Raises
  UserError for options that cannot go together.
  """
  full = flag_groups.defaults()
  full.update(values or {})
  # The --model's defaults for other flags (models' FLAG_DEFAULTS), where
  # the script has the flag and it was not given (a script without
  # --preprocessing, the distributed trainer, keeps the tutorial's).
  model_defaults = models.flag_defaults(full['model'])
  for name, value in model_defaults.items():
    if name in (values or {}) and name not in given:
      full[name] = value
  given = {name: full[name] for name in given}
  _check_model_flags(full, given)
  recipe = _recipe(full)
  _check_recipe(recipe)
  for warning in precision_lib.check(full['precision']):
    if warn:
      warn(warning)
  return Config(
      data_dir=full['data_dir'], dataset=_dataset(full),
      data_url=full['data_url'],
      download_deadline_secs=full['download_deadline_secs'],
      validation_examples=full['validation_examples'],
      batch_size=full['batch_size'],
      min_fraction_of_examples_in_queue=(
          full['min_fraction_of_examples_in_queue']),
      preprocessing=full['preprocessing'], model=full['model'],
      norm=full['norm'], top_layers=full['top_layers'],
      dropout_keep_prob=full['dropout_keep_prob'], use_fp16=full['use_fp16'],
      recipe=recipe, schedule=_schedule(full),
      loop=training.LoopOptions(
          full['train_dir'], full['max_steps'], full['log_frequency'],
          full['save_checkpoint_secs'], full['save_checkpoint_steps'],
          full['save_summaries_steps'], full['input_timeout_secs'],
          full['keep_checkpoints']),
      seed=full['seed'], log_epochs=full['log_epochs'],
      log_device_placement=full['log_device_placement'],
      checkpoint_dir=full['checkpoint_dir'],
      intra_op_threads=full['intra_op_threads'],
      inter_op_threads=full['inter_op_threads'], xla=full['xla'],
      precision=full['precision'], towers=towers, given=given,
      augmentation=full['augmentation'],
      moving_average=model_defaults.get('moving_average', True))


def from_flags(flag_values, towers=1, warn=None):
  """The Config of the flags the script defined, as parsed."""
  names = flag_groups.defined_names()
  return build({name: flag_values[name].value for name in names},
               [name for name in names if flag_values[name].present],
               towers, warn)
