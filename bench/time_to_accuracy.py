"""Time to accuracy: trains recipes, then scores every checkpoint they kept.

    python bench/time_to_accuracy.py --data_dir /tmp/cifar10_data \\
        --exact_dir /tmp/cifar10_exact --out_dir /tmp/tta --tta 2 \\
        --recipe 'whitened_cnn=--model=whitened_cnn --precision=bfloat16' \\
        --recipe 'resnet20=--model=resnet20 --epochs=80'

Each --recipe NAME=FLAGS runs cifar10_train.py FLAGS on --data_dir, in
--out_dir/NAME/train, with a checkpoint every 1/--checkpoints_per_epoch
epoch, all of them kept. Training runs alone: the checkpoints are evaluated
afterwards (precision @ 1 on the test file of --data_dir and, with
--exact_dir, of that directory), so that evaluation does not take the CPU
from training. A recipe whose directory already holds a finished run is not
trained again, and a checkpoint scored before is not scored again (delete
the directory to retrain).

It prints one table: per checkpoint, the epochs trained, the wall seconds
from the trainer's launch to the checkpoint, the examples/sec over that
time, and the precisions; and writes --plot, precision against wall time
with target lines at 86, 90, 93 and 94 %, every recipe on one plot (needs
matplotlib; without it the table is all). Nothing here is a test.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import argparse
import glob
import json
import os
import re
import shlex
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

TARGETS = (0.86, 0.90, 0.93, 0.94)
# The flag groups whose flags a recipe may give (those of cifar10_train.py).
GROUPS = ('data', 'download', 'split', 'batch', 'model', 'training',
          'schedule', 'preprocessing', 'session')


def parse_args(argv):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--recipe', action='append', required=True,
                      help='NAME=FLAGS of cifar10_train.py (repeatable)')
  parser.add_argument('--data_dir', required=True)
  parser.add_argument('--exact_dir', default=None,
                      help='another data directory whose test file is '
                      'scored too (the bit-exact subset)')
  parser.add_argument('--out_dir', required=True)
  parser.add_argument('--checkpoints_per_epoch', type=float, default=1.0)
  parser.add_argument('--tta', type=int, default=0, choices=[0, 1, 2],
                      help='test-time augmentation of the evaluation')
  parser.add_argument('--nice', type=int, default=0,
                      help='niceness of the trainer (negative needs root)')
  parser.add_argument('--plot', default=None, help='PNG to write')
  args = parser.parse_args(argv)
  recipes = []
  for text in args.recipe:
    name, sep, flags = text.partition('=')
    if not sep or not re.match(r'^[\w.-]+$', name):
      parser.error('--recipe %r: give NAME=FLAGS' % text)
    recipes.append((name, shlex.split(flags)))
  args.recipes = recipes
  return args


def recipe_config(flags):
  """The config.Config of a recipe's flags (its model's defaults applied)."""
  from absl import flags as absl_flags
  from cifar10lib.cli import cli
  from cifar10lib.cli import config
  FLAGS = absl_flags.FLAGS
  if 'train_dir' not in FLAGS:
    cli.define_flags(*GROUPS)
  FLAGS.unparse_flags()
  FLAGS(['time_to_accuracy'] + list(flags))
  return config.from_flags(FLAGS)


def train(args, name, flags):
  """Runs the recipe's trainer unless a finished run is there; returns the
  launch time (time.time()) and its wall seconds."""
  from cifar10lib.data import datasets
  run_dir = os.path.join(args.out_dir, name)
  done = os.path.join(run_dir, 'times')
  if os.path.exists(done):
    print('%s: reusing the finished run in %s' % (name, run_dir), flush=True)
    with open(done) as f:
      launch, wall = [float(x) for x in f.read().split()]
    return launch, wall
  cfg = recipe_config(flags)
  examples = datasets.split(args.data_dir, 'train').num_examples
  every = max(1, int(round(examples / cfg.batch_size /
                           args.checkpoints_per_epoch)))
  os.makedirs(run_dir, exist_ok=True)
  cmd = [sys.executable, os.path.join(REPO, 'cifar10_train.py'),
         '--data_dir', args.data_dir,
         '--train_dir', os.path.join(run_dir, 'train'),
         '--keep_checkpoints=0', '--save_checkpoint_steps=%d' % every] + flags
  print('%s: %s' % (name, ' '.join(shlex.quote(c) for c in cmd)), flush=True)
  launch = time.time()
  with open(os.path.join(run_dir, 'train.log'), 'w') as log:
    status = subprocess.call(
        cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
        preexec_fn=(lambda: os.nice(args.nice)) if args.nice else None)
  wall = time.time() - launch
  if status != 0:
    sys.exit('time_to_accuracy.py: error: %s: the trainer exited %d; see %s'
             % (name, status, os.path.join(run_dir, 'train.log')))
  with open(done, 'w') as f:
    f.write('%r %r\n' % (launch, wall))
  return launch, wall


def checkpoints_of(train_dir):
  """[(step, prefix)] of every checkpoint in train_dir, by step."""
  found = []
  for index in glob.glob(os.path.join(train_dir, 'model.ckpt-*.index')):
    prefix = index[:-len('.index')]
    found.append((int(prefix.rsplit('-', 1)[1]), prefix))
  return sorted(found)


def evaluate(args, name, flags, data_dir, paths):
  """{prefix: precision @ 1} of each checkpoint on data_dir's test file.

  The scores are kept in the run's directory (scores_<data dir>_tta<N>.json)
  and a checkpoint scored before is not scored again.
  """
  cache = os.path.join(args.out_dir, name, 'scores_%s_tta%d.json' % (
      os.path.basename(os.path.normpath(data_dir)), args.tta))
  scores = {}
  if os.path.exists(cache):
    with open(cache) as f:
      scores = json.load(f)
  missing = [p for p in paths if os.path.basename(p) not in scores]
  if missing:
    scores.update((os.path.basename(path), precision) for path, precision
                  in _score(args, name, flags, data_dir, missing).items())
    with open(cache + '.tmp', 'w') as f:
      json.dump(scores, f, indent=1, sort_keys=True)
    os.rename(cache + '.tmp', cache)
  return {path: scores[os.path.basename(path)] for path in paths}


def _score(args, name, flags, data_dir, paths):
  """{prefix: precision @ 1} of each checkpoint, evaluated now."""
  from cifar10lib.base.compat import tf
  from cifar10lib.cli import cli
  from cifar10lib.data import datasets
  from cifar10lib.evaluation import evaluation
  cfg = recipe_config(flags)
  split = datasets.split(data_dir, 'test')
  evaluator = evaluation.Evaluator(
      split, split.num_examples, None, 1000, False,
      cfg.model_options(train=False), cfg.moving_average, cfg.preprocessing,
      full=cli.full_images(cfg), tta=args.tta)
  writer = tf.summary.FileWriter(os.path.join(args.out_dir, name, 'eval_' +
                                              os.path.basename(data_dir)))
  precisions = {}
  for path in paths:
    correct, total, _ = evaluator.evaluate(path, writer)
    precisions[path] = correct / total
  writer.close()
  return precisions


def rows_of(args, name, flags, launch, wall):
  """The table's rows of one trained recipe (its checkpoints scored)."""
  from cifar10lib.data import datasets
  cfg = recipe_config(flags)
  examples = datasets.split(args.data_dir, 'train').num_examples
  found = checkpoints_of(os.path.join(args.out_dir, name, 'train'))
  found = [(step, path) for step, path in found if step > 0]
  paths = [path for _, path in found]
  test = evaluate(args, name, flags, args.data_dir, paths)
  exact = (evaluate(args, name, flags, args.exact_dir, paths)
           if args.exact_dir else {})
  rows = []
  for step, path in found:
    seconds = os.path.getmtime(path + '.index') - launch
    rows.append(dict(recipe=name, step=step,
                     epochs=step * cfg.batch_size / examples,
                     seconds=seconds,
                     rate=step * cfg.batch_size / seconds,
                     test=test[path], exact=exact.get(path)))
  rows.append(dict(recipe=name, step=None, seconds=wall))
  return rows


def print_table(args, rows):
  print('\nprecision @ 1 with --tta=%d; seconds: wall time of training from '
        'the trainer\'s launch' % args.tta)
  print('| recipe | step | epochs | seconds | examples/sec | test |%s'
        % (' exact |' if args.exact_dir else ''))
  print('|---|---|---|---|---|---|%s' % ('---|' if args.exact_dir else ''))
  for row in rows:
    if row['step'] is None:
      print('| %s | trainer exit | | %.0f | | |%s' % (
          row['recipe'], row['seconds'], ' |' if args.exact_dir else ''))
      continue
    exact = ' %.4f |' % row['exact'] if row['exact'] is not None else ''
    print('| %s | %d | %.2f | %.0f | %.1f | %.4f |%s' % (
        row['recipe'], row['step'], row['epochs'], row['seconds'],
        row['rate'], row['test'], exact))
  sys.stdout.flush()


def plot(path, rows):
  """Writes the PNG; returns False (saying so) without matplotlib."""
  try:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
  except ImportError:
    print('No plot: matplotlib is not installed (pip install matplotlib).')
    return False
  figure, axes = plt.subplots(figsize=(8, 5))
  for name in sorted(set(r['recipe'] for r in rows), key=[
      r['recipe'] for r in rows].index):
    points = [r for r in rows if r['recipe'] == name and r['step']]
    axes.plot([r['seconds'] / 60 for r in points],
              [100 * r['test'] for r in points], marker='o', label=name)
  for target in TARGETS:
    axes.axhline(100 * target, color='grey', linestyle=':', linewidth=1)
    axes.text(0.005, 100 * target, '%d %%' % round(100 * target),
              transform=axes.get_yaxis_transform(), color='grey', fontsize=8,
              va='bottom')
  axes.set_xlabel('wall minutes of training')
  axes.set_ylabel('precision @ 1, test set (%)')
  axes.legend(loc='lower right')
  axes.grid(alpha=0.3)
  figure.tight_layout()
  figure.savefig(path, dpi=100)
  plt.close(figure)
  print('Plot: %s' % path)
  return True


def main(argv):
  args = parse_args(argv)
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  import report  # bench/, next to this file
  print('machine: %s; %d cores available; oneDNN ISA: %s%s' % (
      report.cpu_description(), len(os.sched_getaffinity(0)),
      report.onednn_isa(), (' (ONEDNN_MAX_CPU_ISA=%s)'
                            % os.environ['ONEDNN_MAX_CPU_ISA']
                            if os.environ.get('ONEDNN_MAX_CPU_ISA') else '')),
        flush=True)
  # Every recipe trains before any evaluation, so that no evaluation takes
  # the CPU from a later recipe's training.
  trained = [(name, flags) + train(args, name, flags)
             for name, flags in args.recipes]
  rows = []
  for name, flags, launch, wall in trained:
    rows.extend(rows_of(args, name, flags, launch, wall))
  print_table(args, rows)
  if args.plot:
    plot(args.plot, rows)


if __name__ == '__main__':
  main(sys.argv[1:])
