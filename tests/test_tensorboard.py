"""TensorBoard shows the tutorial's summaries, on both runtimes.

One short training run, one multi-tower run and one evaluation write their
event files under one log directory; the tests read them back with
TensorBoard's own event reader and through a real TensorBoard server's HTTP
data API, never with TensorFlow's writer or summary_iterator. Summaries are
checked against each other (a layer's sparsity against the zeros in its
activations' histogram) and against the model (the evaluated batch's logits,
computed here from the checkpoint).
"""
from concurrent import futures
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator

from conftest import numpy_eval_images, run_script
from cifar10lib.base.compat import tf
from cifar10lib.training import cifar10
import fakes

BATCH_SIZE = 16
TRAIN_STEPS = 20
SUMMARY_EVERY = 10
# The summary hook runs the summaries on the first step and every
# SUMMARY_EVERY steps after it, and labels them with the global step the run
# ended at.
SUMMARY_STEPS = [1, 11]
TRAIN_FLAGS = ['--batch_size', str(BATCH_SIZE), '--max_steps', str(TRAIN_STEPS),
               '--save_summaries_steps', str(SUMMARY_EVERY),
               '--log_frequency', str(SUMMARY_EVERY), '--seed', '3']
# Two towers of half a batch each see as many examples per step.
MULTI_GPU_FLAGS = ['--batch_size', str(BATCH_SIZE // 2), '--num_gpus', '2',
                   '--tower_device', 'cpu', '--max_steps', str(TRAIN_STEPS),
                   '--save_summaries_steps', str(SUMMARY_EVERY), '--seed', '3']
EVAL_RECORDS = 50

LAYERS = ['conv1', 'conv2', 'local3', 'local4', 'softmax_linear']
LOSSES = ['cross_entropy', 'local3/weight_loss', 'local4/weight_loss',
          'total_loss']
VARIABLES = ['%s/%s' % (layer, kind) for layer in LAYERS
             for kind in ('weights', 'biases')]
# Elements in each histogram: the tutorial's shapes, a batch of 24x24 crops.
VARIABLE_SIZES = {
    'conv1/weights': 5 * 5 * 3 * 64, 'conv1/biases': 64,
    'conv2/weights': 5 * 5 * 64 * 64, 'conv2/biases': 64,
    'local3/weights': 6 * 6 * 64 * 384, 'local3/biases': 384,
    'local4/weights': 384 * 192, 'local4/biases': 192,
    'softmax_linear/weights': 192 * 10, 'softmax_linear/biases': 10,
}
ACTIVATION_SIZES = {
    'conv1': BATCH_SIZE * 24 * 24 * 64, 'conv2': BATCH_SIZE * 12 * 12 * 64,
    'local3': BATCH_SIZE * 384, 'local4': BATCH_SIZE * 192,
    'softmax_linear': BATCH_SIZE * 10,
}
# TensorFlow's v1 image summary tags each of its (here 3) images apart.
IMAGE_TAGS = ['images/image/%d' % i for i in range(3)]
IMAGE_SIDE = 24
# The input queues' own fill-level scalars, which TensorFlow adds itself.
QUEUE_SCALAR = re.compile(r'^(input_producer|shuffle_batch|batch)/fraction_')

TRAIN_SCALARS = (['learning_rate'] + LOSSES +
                 [name + ' (raw)' for name in LOSSES] +
                 [layer + '/sparsity' for layer in LAYERS])
TRAIN_HISTOGRAMS = ([layer + '/activations' for layer in LAYERS] + VARIABLES +
                    [name + '/gradients' for name in VARIABLES])
LOSS_DECAY = 0.9        # the tutorial's loss averages, starting from zero
INITIAL_LR = 0.1        # the tutorial's learning rate before any decay
PRECISION_LINE = re.compile(
    r'precision @ 1 = (\d\.\d{3}) \((\d+)/(\d+) correct, global step (\d+), '
    r'model\.ckpt-(\d+)\)')

SERVER_START_SECS = 60
# Every size 0: the reader keeps every event instead of a sample.
LOAD_ALL = {kind: 0 for kind in event_accumulator.DEFAULT_SIZE_GUIDANCE}


class Runs(object):
  """Paths and console output of the shared runs."""


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  """Trains, trains with two towers, evaluates; all logs under one logdir."""
  base = tmp_path_factory.mktemp('tensorboard')
  result = Runs()
  result.data_dir = str(base / 'data')
  result.test = fakes.write_dataset(result.data_dir, train_per_file=40,
                                    test_records=EVAL_RECORDS)['test']
  result.logdir = str(base / 'logs')
  result.train_dir = os.path.join(result.logdir, 'train')
  result.multi_gpu_dir = os.path.join(result.logdir, 'multi_gpu')
  result.eval_dir = os.path.join(result.logdir, 'eval')
  # The two trainings are independent; running them side by side saves time.
  with futures.ThreadPoolExecutor(max_workers=1) as background:
    multi_gpu = background.submit(
        run_script, 'cifar10_multi_gpu_train.py', '--data_dir',
        result.data_dir, '--train_dir', result.multi_gpu_dir, *MULTI_GPU_FLAGS)
    run_script('cifar10_train.py', '--data_dir', result.data_dir,
               '--train_dir', result.train_dir, *TRAIN_FLAGS)
    result.eval_output = run_script(
        'cifar10_eval.py', '--data_dir', result.data_dir,
        '--checkpoint_dir', result.train_dir, '--eval_dir', result.eval_dir,
        '--batch_size', str(BATCH_SIZE), '--run_once').stdout
    multi_gpu.result()  # raises its failure, with the script's output
  return result


def load_events(log_dir):
  """TensorBoard's own view of a run directory, every event kept."""
  accumulator = event_accumulator.EventAccumulator(log_dir,
                                                   size_guidance=LOAD_ALL)
  accumulator.Reload()
  return accumulator


def scalar_series(accumulator, tag):
  return [(e.step, e.value) for e in accumulator.Scalars(tag)]


def own_scalar_tags(accumulator):
  """The scalar tags apart from the input queues' fill levels."""
  return sorted(tag for tag in accumulator.Tags()['scalars']
                if not QUEUE_SCALAR.match(tag))


@pytest.fixture(scope='module')
def train_events(runs):
  return load_events(runs.train_dir)


@pytest.fixture(scope='module')
def eval_events(runs):
  return load_events(runs.eval_dir)


def test_training_scalars_at_the_summary_steps(train_events):
  assert own_scalar_tags(train_events) == sorted(TRAIN_SCALARS)
  for tag in TRAIN_SCALARS:
    assert [e.step for e in train_events.Scalars(tag)] == SUMMARY_STEPS, tag
  assert scalar_series(train_events, 'learning_rate') == [
      (step, pytest.approx(INITIAL_LR)) for step in SUMMARY_STEPS]
  first_ce = train_events.Scalars('cross_entropy (raw)')[0].value
  assert first_ce == pytest.approx(2.3026, abs=0.15)  # ln 10: no guess yet
  for name in LOSSES:
    raw = train_events.Scalars(name + ' (raw)')
    averaged = train_events.Scalars(name)
    # The average is zero before the first step and includes that step.
    assert averaged[0].value == pytest.approx((1 - LOSS_DECAY) * raw[0].value,
                                              rel=1e-5), name
  for i in range(len(SUMMARY_STEPS)):
    parts = sum(train_events.Scalars(name + ' (raw)')[i].value
                for name in LOSSES[:-1])
    assert train_events.Scalars('total_loss (raw)')[i].value == pytest.approx(
        parts, rel=1e-5)
  # A layer's sparsity is the fraction of zeros in its activations, which
  # its histogram counts apart: in the bucket [0, 1e-12).
  for layer in LAYERS:
    sparsity = train_events.Scalars(layer + '/sparsity')
    histograms = train_events.Histograms(layer + '/activations')
    for scalar, histogram in zip(sparsity, histograms):
      assert scalar.step == histogram.step
      zeros = zero_count(histogram.histogram_value)
      assert scalar.value == pytest.approx(
          zeros / histogram.histogram_value.num, abs=1e-6), layer
      # A ReLU over this data leaves some units off and some on.
      if layer != 'softmax_linear':
        assert 0 < zeros < histogram.histogram_value.num, layer


def zero_count(histogram):
  """Values in the histogram's bucket [0, 1e-12): TensorFlow's bucket of 0."""
  return sum(count for limit, count in zip(histogram.bucket_limit,
                                           histogram.bucket)
             if limit == pytest.approx(1e-12, rel=1e-9))


def test_training_histograms_of_activations_variables_and_gradients(
    runs, train_events):
  assert sorted(train_events.Tags()['histograms']) == sorted(TRAIN_HISTOGRAMS)
  expected_sizes = dict(VARIABLE_SIZES)
  expected_sizes.update(
      (name + '/gradients', size) for name, size in VARIABLE_SIZES.items())
  expected_sizes.update(
      (layer + '/activations', size) for layer, size in ACTIVATION_SIZES.items())
  # The variables' histograms hold as many values as the saved variables.
  saved = {name: value.size for name, value in
           fakes.read_checkpoint(runs.train_dir).items()}
  for tag in TRAIN_HISTOGRAMS:
    events = train_events.Histograms(tag)
    assert [e.step for e in events] == SUMMARY_STEPS, tag
    for event in events:
      histogram = event.histogram_value
      assert histogram.num == expected_sizes[tag], tag
      assert sum(histogram.bucket) == histogram.num, tag
      if tag in VARIABLE_SIZES:
        assert histogram.num == saved[tag], tag
  # A ReLU's output is never negative; the logits are.
  for layer in LAYERS[:-1]:
    assert train_events.Histograms(layer + '/activations')[0] \
        .histogram_value.min >= 0.0, layer
  assert train_events.Histograms('softmax_linear/activations')[0] \
      .histogram_value.min < 0.0


def test_training_images(train_events):
  assert sorted(train_events.Tags()['images']) == IMAGE_TAGS
  for tag in IMAGE_TAGS:
    events = train_events.Images(tag)
    assert [e.step for e in events] == SUMMARY_STEPS, tag
    for event in events:
      assert (event.width, event.height) == (IMAGE_SIDE, IMAGE_SIDE)
      assert event.encoded_image_string.startswith(b'\x89PNG\r\n\x1a\n')


def augmentation_check(graph_def):
  """Asserts that the input distortions all sit in data_augmentation/."""
  names = [node.name for node in graph_def.node]
  assert any(name.startswith('data_augmentation/') for name in names)
  random_draws = [node.name for node in graph_def.node
                  if node.op in ('RandomUniform', 'RandomUniformInt')]
  assert random_draws
  assert all(name.startswith('data_augmentation/') for name in random_draws), \
      random_draws
  # What enters the shuffling queue is the augmentation's output.
  enqueues = [node for node in graph_def.node
              if node.op.startswith('QueueEnqueue')
              and node.name.startswith('shuffle_batch/')]
  assert enqueues
  for node in enqueues:
    assert any(source.startswith('data_augmentation/')
               for source in node.input), list(node.input)


def test_training_graph_has_data_augmentation_scope(train_events):
  assert train_events.Tags()['graph']
  augmentation_check(train_events.Graph())


def checkpoint_logits(checkpoint_dir, images):
  """The model's logits for images under the latest checkpoint's moving
  averages, which evaluation restores."""
  with tf.Graph().as_default():
    logits = cifar10.inference(tf.constant(images.astype(np.float32)),
                               train=False)
    shadows = {v.op.name + fakes.SHADOW: v for v in tf.trainable_variables()}
    with tf.Session() as sess:
      tf.train.Saver(shadows).restore(
          sess, tf.train.latest_checkpoint(checkpoint_dir))
      return sess.run(logits).astype(np.float64)


def test_eval_precision_at_the_checkpoint_step(runs, eval_events):
  match = PRECISION_LINE.search(runs.eval_output)
  assert match, runs.eval_output
  printed, correct, total, step, checkpoint_step = match.groups()
  assert int(step) == int(checkpoint_step) == TRAIN_STEPS
  assert int(total) == EVAL_RECORDS
  events = eval_events.Scalars('Precision @ 1')
  assert [e.step for e in events] == [TRAIN_STEPS]
  assert events[0].value == pytest.approx(int(correct) / int(total), rel=1e-6)
  assert events[0].value == pytest.approx(float(printed), abs=5e-4)
  # The first batch's activations and images come with it, at that step.
  for layer in LAYERS:
    assert [e.step for e in eval_events.Histograms(layer + '/activations')] \
        == [TRAIN_STEPS]
  assert sorted(eval_events.Tags()['images']) == IMAGE_TAGS
  # Those activations are the evaluated batch's: the first records' logits,
  # computed here from the checkpoint, have their count, extremes and sum.
  logits = checkpoint_logits(runs.train_dir, numpy_eval_images(
      runs.test.pixels[:BATCH_SIZE]))
  histogram = eval_events.Histograms('softmax_linear/activations')[0] \
      .histogram_value
  assert histogram.num == logits.size
  assert histogram.min == pytest.approx(logits.min(), rel=1e-4, abs=1e-5)
  assert histogram.max == pytest.approx(logits.max(), rel=1e-4, abs=1e-5)
  assert histogram.sum == pytest.approx(logits.sum(), rel=1e-4, abs=1e-3)
  # Evaluation images are cropped, never distorted.
  assert not any(node.name.startswith('data_augmentation/')
                 for node in eval_events.Graph().node)


def test_multi_gpu_writes_the_same_tags(runs, train_events):
  events = load_events(runs.multi_gpu_dir)
  tags = events.Tags()
  assert own_scalar_tags(events) == sorted(TRAIN_SCALARS)
  assert sorted(tags['histograms']) == sorted(TRAIN_HISTOGRAMS)
  assert sorted(tags['images']) == IMAGE_TAGS
  every_tag = tags['scalars'] + tags['histograms'] + tags['images']
  assert not [tag for tag in every_tag if 'tower' in tag]
  for tag in TRAIN_SCALARS:
    assert [e.step for e in events.Scalars(tag)] == SUMMARY_STEPS, tag
  for tag in TRAIN_HISTOGRAMS:
    assert [e.step for e in events.Histograms(tag)] == SUMMARY_STEPS, tag
  augmentation_check(events.Graph())


def free_port():
  with socket.socket() as probe:
    probe.bind(('127.0.0.1', 0))
    return probe.getsockname()[1]


def fetch_json(base_url, path, **query):
  url = base_url + path
  if query:
    url += '?' + urllib.parse.urlencode(query)
  with urllib.request.urlopen(url, timeout=10) as response:
    return json.loads(response.read().decode('utf-8'))


def served_series(base_url, run, tag):
  """(step, value) pairs of a scalar series as TensorBoard serves it."""
  rows = fetch_json(base_url, '/data/plugin/scalars/scalars', run=run, tag=tag)
  return [(int(step), value) for _, step, value in rows]


def wait_for_series(server, base_url, expected, log_path):
  """Polls the server until it serves every expected series, or fails.

  expected: {(run, tag): [(step, value)]}. TensorBoard loads event files in
  the background, so a series may be missing or partial at first.
  """
  deadline = time.time() + SERVER_START_SECS
  seen = last_error = None
  while time.time() < deadline:
    if server.poll() is not None:
      with open(log_path) as log:
        pytest.fail('tensorboard exited with %d:\n%s'
                    % (server.returncode, log.read()))
    try:
      seen = {key: served_series(base_url, *key) for key in expected}
      if all(len(seen[key]) == len(expected[key]) for key in expected):
        return seen
    except (IOError, OSError, ValueError) as e:  # not listening yet
      last_error = e
    time.sleep(0.5)
  with open(log_path) as log:
    pytest.fail('tensorboard served no complete data within %d s (last seen '
                '%r, last error %r):\n%s' % (SERVER_START_SECS, seen,
                                             last_error, log.read()))


def test_tensorboard_server_serves_the_runs(runs, train_events, eval_events,
                                            tmp_path):
  program = os.path.join(os.path.dirname(sys.executable), 'tensorboard')
  if not os.path.exists(program):
    pytest.skip('no tensorboard program next to %s; install requirements.txt'
                % sys.executable)
  expected = {
      ('train', 'total_loss'): scalar_series(train_events, 'total_loss'),
      ('eval', 'Precision @ 1'): scalar_series(eval_events, 'Precision @ 1'),
  }
  port = free_port()
  base_url = 'http://127.0.0.1:%d' % port
  log_path = str(tmp_path / 'tensorboard.log')
  with open(log_path, 'w') as log:
    # TensorBoard notes each running server in <temp dir>/.tensorboard-info:
    # this one's goes under tmp_path, not /tmp.
    server = subprocess.Popen(
        [program, '--logdir', runs.logdir, '--host', '127.0.0.1',
         '--port', str(port), '--reload_interval', '1'],
        stdout=log, stderr=subprocess.STDOUT,
        env=dict(os.environ, TMPDIR=str(tmp_path)))
  try:
    served = wait_for_series(server, base_url, expected, log_path)
    assert sorted(fetch_json(base_url, '/data/runs')) == [
        'eval', 'multi_gpu', 'train']
    for key, series in expected.items():
      assert [step for step, _ in served[key]] == [s for s, _ in series], key
      assert [value for _, value in served[key]] == pytest.approx(
          [value for _, value in series], rel=1e-6), key
    assert [step for step, _ in served[('train', 'total_loss')]] == \
        SUMMARY_STEPS
    assert [step for step, _ in served[('eval', 'Precision @ 1')]] == \
        [TRAIN_STEPS]
  finally:
    server.terminate()
    try:
      server.wait(timeout=15)
    except subprocess.TimeoutExpired:
      server.kill()
      server.wait()
