"""A script's --help (or -h): its docstring, then its flags grouped by what
they do, printed without importing TensorFlow and ending with status 0.

absl's own --help lists every flag in one alphabetical block and exits
with status 1; and it comes after the TensorFlow import, which takes
seconds. compat.py sees a help request on the command line and lets the
library load with a stand-in for TensorFlow (the flag definitions need
only their defaults), and cli.run prints this help before anything else.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import os
import sys

from absl import flags

HELP_ARGS = ('--help', '-h', '-?', '--helpshort', '--helpfull')
HEADER = 'Flags, grouped by what they do:'

# (title, flag names); a script lists the sections holding its flags, in
# this order, and its flags found in none under "Other flags".
SECTIONS = [
    ('The tutorial\'s flags', [
        'data_dir', 'batch_size', 'use_fp16', 'train_dir', 'max_steps',
        'log_frequency', 'log_device_placement', 'num_gpus', 'eval_dir',
        'eval_data', 'checkpoint_dir', 'eval_interval_secs', 'num_examples',
        'run_once', 'ps_hosts', 'worker_hosts', 'job_name', 'task_index']),
    ('Data', [
        'dataset', 'cifar100_labels', 'data_url', 'download_deadline_secs',
        'validation_examples', 'min_fraction_of_examples_in_queue',
        'preprocessing']),
    ('Model and training recipe', [
        'model', 'norm', 'top_layers', 'dropout_keep_prob', 'optimizer',
        'learning_rate', 'momentum', 'num_epochs_per_decay',
        'learning_rate_decay_factor', 'lr_schedule', 'restart_epochs',
        'plateau_eval_steps', 'plateau_patience', 'seed']),
    ('Checkpoints, summaries and evaluation', [
        'save_checkpoint_secs', 'save_checkpoint_steps',
        'save_summaries_steps', 'log_epochs', 'moving_average', 'snapshots',
        'checkpoint_paths', 'per_class', 'top_k', 'checkpoint_path',
        'export_dir', 'overwrite']),
    ('Precision, devices and speed', [
        'precision', 'tower_device', 'xla', 'intra_op_threads',
        'inter_op_threads', 'input_timeout_secs']),
    ('Cluster', [
        'sync_replicas', 'ps_timeout_secs', 'worker_timeout_secs']),
]


def requested(argv):
  """Whether argv (without the program) asks for help, before any '--'."""
  for arg in argv:
    if arg == '--':
      return False
    if arg in HELP_ARGS:
      return True
  return False


def _script_flags(script):
  """The flags the script at path script defined or asked for, by name."""
  key = flags.FLAGS.get_key_flags_for_module(script)
  return dict((flag.name, flag) for flag in key)


def _render(flag_list, lines):
  """Appends absl's help entries of flag_list to lines (absl 2.x's own)."""
  flags.FLAGS._render_flag_list(flag_list, lines)  # pylint: disable=protected-access


def text(script, docstring, full=False):
  """The help of script (sys.argv[0]): docstring, then grouped flags.

  full adds absl's own flags (--run_with_pdb, ...), which --helpfull lists.
  """
  own = _script_flags(script)
  lines = [(docstring or '').strip(), '', HEADER]
  listed = set()
  sections = SECTIONS + [('Other flags', sorted(own))]
  for title, names in sections:
    group = [own[name] for name in names if name in own and name not in listed]
    if not group:
      continue
    listed.update(flag.name for flag in group)
    lines.extend(['', title + ':'])
    # absl's rendering of each flag, so that the text reads as absl's help.
    _render(group, lines)
  if full:
    rest = [flags.FLAGS[name] for name in sorted(flags.FLAGS)
            if name not in own and name == flags.FLAGS[name].name]
    lines.extend(['', 'absl\'s own flags:'])
    _render(rest, lines)
  else:
    lines.extend(['', '--helpfull also lists absl\'s own flags '
                  '(--run_with_pdb, ...).'])
  return '\n'.join(lines) + '\n'


def print_and_exit(argv):
  """Prints the help of argv[0]'s script and exits with status 0."""
  main = sys.modules.get('__main__')
  sys.stdout.write(text(argv[0], getattr(main, '__doc__', None),
                        full='--helpfull' in argv))
  sys.stdout.flush()
  sys.exit(0)
