"""A new user's first hour: what the scripts say, and what they leave behind.

Every script runs as a subprocess, as a user would run it. Event files are
read back with TensorFlow's summary_iterator (raw event counts) and with
TensorBoard's own EventAccumulator (what its Graphs tab loads).
"""
import ast
import glob
import logging
import os
import re
import signal
import time

import pytest
from tensorboard.backend.event_processing import event_accumulator

from conftest import REPO, Proc, run_script
import fakes
from cifar10lib.base.compat import tf

TRAIN_RECORDS = 5 * 60  # the data_dir fixture's training records
QUEUE_FRACTION = 0.05
FAST = ['--batch_size', '16', '--min_fraction_of_examples_in_queue',
        str(QUEUE_FRACTION), '--log_frequency', '2']
TRAINERS = {
    'cifar10_train.py': [],
    'cifar10_multi_gpu_train.py': ['--num_gpus', '1', '--tower_device', 'cpu'],
}
# The tutorial's progress line; every line with ': step ' must be one, as
# log parsers take them by that.
LOG_LINE = re.compile(r'^\S+ \S+: step \d+, loss = \d+\.\d\d \(\d+\.\d '
                      r'examples/sec; \d+\.\d\d\d sec/batch\)$')


def start_line(data_dir, train_dir=None):
  return ('Training on %d examples from %s%s; first step once the shuffling '
          'queue holds %d examples (--min_fraction_of_examples_in_queue).'
          % (TRAIN_RECORDS, data_dir,
             ' into %s' % train_dir if train_dir else '',
             int(TRAIN_RECORDS * QUEUE_FRACTION)))


def event_files(log_dir):
  return sorted(glob.glob(os.path.join(log_dir, 'events.out.tfevents.*')))


def event_kinds(path):
  """How many events of each kind (graph_def, meta_graph_def, ...) path has."""
  counts = {}
  for event in tf.train.summary_iterator(path):
    kind = event.WhichOneof('what')
    counts[kind] = counts.get(kind, 0) + 1
  return counts


def snapshot(directory):
  """Every file of directory with its size and modification time."""
  return {name: (os.path.getsize(os.path.join(directory, name)),
                 os.path.getmtime(os.path.join(directory, name)))
          for name in os.listdir(directory)}


def assert_graph_once(path, caplog):
  """path holds the graph once, and TensorBoard loads it without a warning."""
  kinds = event_kinds(path)
  assert kinds.get('graph_def') == 1, kinds
  assert kinds.get('meta_graph_def') == 1, kinds
  assert kinds.get('summary', 0) >= 1, kinds
  caplog.clear()
  with caplog.at_level(logging.WARNING):
    accumulator = event_accumulator.EventAccumulator(
        path, size_guidance={event_accumulator.GRAPH: 0})
    accumulator.Reload()
    graph = accumulator.Graph()
    meta_graph = accumulator.MetaGraph()
  assert not [r for r in caplog.records if 'more than one' in r.getMessage()]
  # The copy kept is the finished graph, with the saver that wrote the
  # checkpoints.
  names = {node.name for node in graph.node}
  assert {'global_step', 'conv1/weights', 'softmax_linear/biases'} <= names
  assert len(meta_graph.graph_def.node) == len(graph.node)
  assert meta_graph.saver_def.filename_tensor_name


def checkpoint_step(train_dir):
  return int(tf.train.latest_checkpoint(train_dir).rsplit('-', 1)[1])


@pytest.mark.parametrize('script', sorted(TRAINERS))
def test_trainer_says_what_it_does_and_writes_the_graph_once(
    script, data_dir, tmp_path, caplog):
  train_dir = str(tmp_path / 'train')
  args = ['--data_dir', data_dir, '--train_dir', train_dir] + FAST + (
      TRAINERS[script])
  # A new interpreter, exactly as a user starts it (script_runs).
  result = run_script(script, *args + ['--max_steps', '4'], fresh=True)
  lines = result.stdout.splitlines()
  start = lines.index(start_line(data_dir, train_dir))
  steps = [i for i, line in enumerate(lines) if ': step ' in line]
  assert all(LOG_LINE.match(lines[i]) for i in steps), lines
  assert len(steps) == 2 and start < steps[0], lines
  # A line after the first step, which may take long, and not a log line.
  first = [i for i, line in enumerate(lines) if ': first step done in ' in line]
  assert len(first) == 1 and start < first[0] < steps[0], lines
  assert lines[-1] == 'Done at step 4; checkpoint saved in %s' % train_dir
  assert checkpoint_step(train_dir) == 4
  [first] = event_files(train_dir)
  assert_graph_once(first, caplog)

  # A second start with nothing left to do says so, and leaves nothing.
  before = snapshot(train_dir)
  for max_steps in ('4', '3'):
    time.sleep(1.1)  # a new event file would have another name
    result = run_script(script, *args + ['--max_steps', max_steps])
    assert result.stdout.splitlines()[-1] == (
        '--train_dir=%s is already at step 4, --max_steps=%s: nothing to '
        'train' % (train_dir, max_steps))
    assert 'Resuming from' not in result.stdout
    assert 'Training on' not in result.stdout
    assert 'Done' not in result.stdout
    assert snapshot(train_dir) == before

  # Resuming writes a new event file, again with the graph once.
  result = run_script(script, *args + ['--max_steps', '6'])
  lines = result.stdout.splitlines()
  resumed = lines.index('Resuming from %s'
                        % os.path.join(train_dir, 'model.ckpt-4'))
  assert lines[resumed + 1] == start_line(data_dir, train_dir)
  assert lines[-1] == 'Done at step 6; checkpoint saved in %s' % train_dir
  first_again, second = event_files(train_dir)
  assert first_again == first
  assert_graph_once(second, caplog)


def test_max_steps_0_on_a_new_train_dir_still_saves_the_initial_weights(
    data_dir, tmp_path):
  # Only a checkpoint already at --max_steps makes a start a no-op: a new
  # directory gets its step-0 checkpoint, as before.
  train_dir = str(tmp_path / 'train')
  result = run_script('cifar10_train.py', '--data_dir', data_dir,
                      '--train_dir', train_dir, '--max_steps', '0', *FAST)
  assert result.stdout.splitlines()[-1] == (
      'Done at step 0; checkpoint saved in %s' % train_dir)
  assert checkpoint_step(train_dir) == 0
  assert len(event_files(train_dir)) == 1


def test_distributed_chief_says_what_it_does_and_writes_the_graph_once(
    data_dir, tmp_path, caplog):
  train_dir = str(tmp_path / 'train')
  flags = ['--data_dir', data_dir, '--train_dir', train_dir, '--max_steps',
           '4', '--worker_timeout_secs', '60'] + FAST
  processes = []

  def start(*args):
    processes.append(Proc('cifar10_dist_train.py', *args))
    return processes[-1]

  def cluster(workers):
    ports = fakes.free_ports(1 + workers)
    return ['--ps_hosts=127.0.0.1:%d' % ports[0], '--worker_hosts=' +
            ','.join('127.0.0.1:%d' % port for port in ports[1:])]

  try:
    hosts = cluster(1)
    start(*hosts + ['--job_name=ps', '--task_index=0'])
    result = run_script('cifar10_dist_train.py', *hosts + flags + [
        '--job_name=worker', '--task_index=0'])
    lines = result.stdout.splitlines()
    assert start_line(data_dir, train_dir) in lines
    assert 'Done at step 4; checkpoint saved in %s' % train_dir in lines
    assert checkpoint_step(train_dir) == 4
    [events] = event_files(train_dir)
    assert_graph_once(events, caplog)

    # The whole cluster started again, on new parameter servers: the chief
    # has nothing to train, and the other worker, which waits for the chief
    # to set the variables, stops too instead of timing out.
    before = snapshot(train_dir)
    time.sleep(1.1)
    hosts = cluster(2)
    start(*hosts + ['--job_name=ps', '--task_index=0'])
    other = start(*hosts + flags + ['--job_name=worker', '--task_index=1'])
    result = run_script('cifar10_dist_train.py', *hosts + flags + [
        '--job_name=worker', '--task_index=0'])
    assert ('--train_dir=%s is already at step 4, --max_steps=4: nothing to '
            'train' % train_dir) in result.stdout.splitlines()
    for word in ('Resuming from', 'Training on', 'Done'):
      assert word not in result.stdout
    assert other.finish() == 0, other.stdout + other.stderr
    assert 'worker 1: ran 0 steps (0 examples); last global step 4' in (
        other.lines)
    assert snapshot(train_dir) == before
  finally:
    for process in processes:
      process.kill()


NEXT_LOOK = 'Next look in 1 s (--eval_interval_secs); Ctrl-C stops.'


def test_watching_evaluator_says_when_it_looks_next_once(data_dir, tmp_path):
  train_dir = str(tmp_path / 'train')
  watcher = Proc('cifar10_eval.py', '--data_dir', data_dir,
                 '--checkpoint_dir', train_dir,
                 '--eval_dir', str(tmp_path / 'eval'),
                 '--eval_interval_secs', '1', '--batch_size', '16')
  try:
    watcher.wait_for(lambda: NEXT_LOOK in watcher.lines,
                     'the next-look line')
    run_script('cifar10_train.py', '--data_dir', data_dir, '--train_dir',
               train_dir, '--max_steps', '2', *FAST)
    watcher.wait_for(
        lambda: any('precision @ 1' in l for l in watcher.lines),
        'an evaluation')
    # A few more looks, each of which could repeat the line.
    time.sleep(3)
    watcher.popen.send_signal(signal.SIGINT)
    assert watcher.finish() == 0, watcher.stderr
  finally:
    watcher.kill()
  lines = watcher.lines
  assert lines.count(NEXT_LOOK) == 1, lines
  waiting = lines.index('No checkpoint file found in --checkpoint_dir=%s; '
                        'waiting for one.' % train_dir)
  assert lines[waiting + 1] == NEXT_LOOK
  # Then the evaluations, of the step-0 checkpoint too if it came in time.
  assert 'precision @ 1 = ' in lines[waiting + 2], lines
  assert re.search(r'precision @ 1 = .* global step 2, model\.ckpt-2\)$',
                   lines[-2]), lines
  assert lines[-1] == 'Interrupted; stopping.'

  # Evaluating once, there is no next look to announce.
  once = run_script('cifar10_eval.py', '--data_dir', data_dir,
                    '--checkpoint_dir', train_dir, '--eval_dir',
                    str(tmp_path / 'eval'), '--batch_size', '16',
                    '--run_once')
  assert 'precision @ 1' in once.stdout
  assert 'Next look' not in once.stdout


SCRIPTS = ['cifar10_train.py', 'cifar10_multi_gpu_train.py',
           'cifar10_dist_train.py', 'cifar10_eval.py', 'cifar10_classify.py',
           'cifar10_export.py']
# What only a developer of this repository would know about.
DEVELOPER_WORDS = re.compile(
    r'\b(training|cli|datasets|checkpoints|cifar10_input|compat|errors|'
    r'download|cluster_spec)\.py\b|replica_device_setter|SyncReplicas|'
    r'tower code|between-graph')


@pytest.mark.parametrize('script', SCRIPTS)
def test_help_starts_with_the_scripts_own_words_for_users(script):
  result = run_script(script, '--help')
  assert 'Traceback' not in result.stderr
  with open(os.path.join(REPO, script)) as f:
    docstring = ast.get_docstring(ast.parse(f.read()))
  intro = result.stdout.split('\nFlags, grouped by what they do:\n')[0]
  assert intro.strip() == docstring.strip()
  assert not DEVELOPER_WORDS.search(intro), DEVELOPER_WORDS.search(intro)
