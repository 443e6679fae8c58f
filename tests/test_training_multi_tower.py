"""Multi-tower training (cifar10_multi_gpu_train.py): tower maths, then the
script on CPUs.

The towers' averaged gradient is compared with the gradient of one device
over the whole batch, and the script runs its towers on several CPU devices
(--tower_device=cpu), so the multi-tower code really runs without a GPU.
"""
import os
import re

import numpy as np
import pytest
from google.protobuf import text_format

from conftest import LOG_LINE, run_script
from cifar10lib.base.compat import tf
from cifar10lib.training import cifar10  # switches TensorFlow to graph mode
from cifar10lib.training import towers
import fakes

BATCH = 8                 # split into two towers of 4
TRAIN_PER_FILE = 60       # five files: 300 examples per epoch
TOWER_BATCH = 16
NUM_TOWERS = 2
SHUFFLE_QUEUE_OPS = ('RandomShuffleQueue', 'RandomShuffleQueueV2')


def fixed_batch():
  rng = np.random.RandomState(0)
  images = rng.standard_normal((BATCH, 24, 24, 3)).astype(np.float32)
  labels = (np.arange(BATCH) * 3 % 10).astype(np.int32)
  return tf.constant(images), tf.constant(labels)


def single_device_graph():
  """(graph, {var name: gradient}, train op) of one device on the batch."""
  graph = tf.Graph()
  with graph.as_default():
    global_step = tf.train.get_or_create_global_step()
    images, labels = fixed_batch()
    total_loss = cifar10.loss(cifar10.inference(images), labels)
    grads = {v.op.name: g for g, v in
             cifar10.optimizer(1.0).compute_gradients(total_loss)}
    train_op = cifar10.train(total_loss, global_step, NUM_TOWERS * 150,
                             batch_size=BATCH)
  return graph, grads, train_op


def tower_graph():
  """(graph, averaged grads, per-tower grads, train op) of two towers."""
  graph = tf.Graph()
  with graph.as_default():
    global_step = tf.train.get_or_create_global_step()
    images, labels = fixed_batch()
    tower_grads, _, deps = towers.build_towers(
        images, labels, NUM_TOWERS, ['/cpu:0'] * NUM_TOWERS)
    averaged = towers.average_gradients(tower_grads)
    lr = cifar10.learning_rate(global_step, NUM_TOWERS * 150, BATCH)
    train_op = cifar10.apply_gradients(averaged, global_step, lr,
                                       dependencies=deps)
    per_tower = [{v.op.name: g for g, v in grads} for grads in tower_grads]
  return graph, {v.op.name: g for g, v in averaged}, per_tower, train_op


def values_of(sess, names):
  variables = {v.op.name: v for v in tf.global_variables()}
  return {name: sess.run(variables[name]) for name in names}


def test_tower_average_equals_single_device_gradient_and_step():
  graph1, grads1, train1 = single_device_graph()
  graph2, grads2, per_tower, train2 = tower_graph()
  with graph1.as_default():
    sess1 = tf.Session()
    sess1.run(tf.global_variables_initializer())
    initial = {v.op.name: sess1.run(v) for v in tf.global_variables()}
    trainable = sorted(v.op.name for v in tf.trainable_variables())
  with graph2.as_default():
    sess2 = tf.Session()
    sess2.run(tf.global_variables_initializer())
    assert sorted(v.op.name for v in tf.trainable_variables()) == trainable
    shadows = [name + '/ExponentialMovingAverage' for name in trainable]
    # The same starting point: weights, their moving averages, global_step.
    for v in tf.global_variables():
      if v.op.name in trainable + shadows + ['global_step']:
        v.load(initial[v.op.name], sess2)

  single = sess1.run(grads1)
  towers = sess2.run(per_tower)
  averaged = sess2.run(grads2)
  assert sorted(averaged) == trainable
  for name in trainable:
    np.testing.assert_allclose(averaged[name], single[name],
                               rtol=1e-4, atol=1e-7, err_msg=name)
  # Each half alone has another gradient: the average really combines them.
  assert not np.allclose(towers[0]['softmax_linear/weights'],
                         towers[1]['softmax_linear/weights'])

  sess1.run(train1)
  sess2.run(train2)
  with graph1.as_default():
    after1 = values_of(sess1, trainable + shadows + ['global_step'])
  with graph2.as_default():
    after2 = values_of(sess2, trainable + shadows + ['global_step'])
  assert after1['global_step'] == after2['global_step'] == 1
  for name in trainable + shadows:
    np.testing.assert_allclose(after2[name], after1[name], rtol=1e-4,
                               atol=1e-7, err_msg=name)
  assert not np.allclose(after1['softmax_linear/weights'],
                         initial['softmax_linear/weights'])
  sess1.close()
  sess2.close()


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp('data'))
  fakes.write_dataset(path, train_per_file=TRAIN_PER_FILE, test_records=50)
  return path


@pytest.fixture(scope='module')
def two_cpu_towers(tmp_path_factory, data_dir):
  """A train_dir trained 20 steps by two towers on two CPU devices."""
  train_dir = str(tmp_path_factory.mktemp('towers'))
  result = run_script(
      'cifar10_multi_gpu_train.py', '--data_dir', data_dir, '--train_dir',
      train_dir, '--num_gpus', str(NUM_TOWERS), '--tower_device', 'cpu',
      '--max_steps', '20', '--batch_size', str(TOWER_BATCH),
      '--log_frequency', '10', '--save_summaries_steps', '1000')
  return train_dir, result


@pytest.fixture(scope='module')
def tower_graph_def(two_cpu_towers):
  """The graph the script wrote, with the devices it asked for."""
  graph_def = tf.GraphDef()
  with open(os.path.join(two_cpu_towers[0], 'graph.pbtxt')) as f:
    text_format.Merge(f.read(), graph_def)
  return graph_def


def test_two_cpu_towers_train_on_distinct_devices(two_cpu_towers,
                                                  tower_graph_def):
  train_dir, result = two_cpu_towers
  lines = result.stdout.splitlines()
  assert 'tower_0 ran on cpu:0' in lines and 'tower_1 ran on cpu:1' in lines, (
      result.stdout)
  assert [int(LOG_LINE.match(line).group(1)) for line in lines
          if ': step ' in line] == [10, 20]
  assert tf.train.latest_checkpoint(train_dir).endswith('model.ckpt-20')

  devices = {}
  for node in tower_graph_def.node:
    tower = node.name.split('/')[0]
    if tower in ('tower_0', 'tower_1') and node.op == 'Conv2D':
      devices.setdefault(tower, set()).add(node.device.upper())
  assert devices == {'tower_0': {'/DEVICE:CPU:0'},
                     'tower_1': {'/DEVICE:CPU:1'}}


def test_one_shared_batch_queue_feeds_the_towers(tower_graph_def):
  nodes = tower_graph_def.node
  queues = [node.name for node in nodes if node.op in SHUFFLE_QUEUE_OPS]
  assert len(queues) == 1, queues
  # The towers read no files themselves: every reader is outside them.
  readers = [node.name for node in nodes if 'Reader' in node.op]
  assert readers and not [r for r in readers if r.startswith('tower_')]


def test_learning_rate_decays_after_batches_per_epoch_over_towers(
    two_cpu_towers):
  # 300 examples, 2 towers x 16 per step: 9.375 steps per epoch, so the
  # first decay after 350 epochs comes at step int(9.375 * 350) = 3281.
  decay_step = 3281
  checkpoint = tf.train.latest_checkpoint(two_cpu_towers[0])
  with tf.Graph().as_default() as graph:
    # Without the towers' CPU devices, placement needs devices cleared.
    tf.train.import_meta_graph(checkpoint + '.meta', clear_devices=True)
    summary = graph.get_operation_by_name('learning_rate')
    learning_rate = summary.inputs[1]
    global_step = tf.train.get_global_step()
    with tf.Session() as sess:
      sess.run(global_step.initializer)
      rates = []
      for step in (decay_step - 1, decay_step):
        global_step.load(step, sess)
        rates.append(sess.run(learning_rate))
  assert rates == pytest.approx([0.1, 0.01])


def test_tower_checkpoint_is_evaluated(two_cpu_towers, data_dir, tmp_path):
  result = run_script('cifar10_eval.py', '--data_dir', data_dir,
                      '--checkpoint_dir', two_cpu_towers[0], '--eval_dir',
                      str(tmp_path), '--run_once', '--batch_size', '16')
  assert re.search(r'precision @ 1 = \d\.\d{3} \(\d+/50 correct, global '
                   r'step 20, model\.ckpt-20\)', result.stdout), result.stdout
  assert 'raw weights' not in result.stdout


def _placements(stdout):
  """{tower: [devices]} of the script's "tower_N ran on ..." lines."""
  return {tower: devices.split(', ') for tower, devices in
          re.findall(r'^(tower_\d+) ran on (.+)$', stdout, re.M)}


def test_towers_say_where_they_ran_and_missing_gpus_fall_back(
    two_cpu_towers, data_dir, tmp_path):
  # On CPU devices, each tower on its own one.
  assert _placements(two_cpu_towers[1].stdout) == {'tower_0': ['cpu:0'],
                                                   'tower_1': ['cpu:1']}
  # On GPUs (the default), where there are any; on the CPU where not.
  result = run_script(
      'cifar10_multi_gpu_train.py', '--data_dir', data_dir, '--train_dir',
      str(tmp_path), '--num_gpus', '2', '--max_steps', '2',
      '--batch_size', str(TOWER_BATCH), '--save_summaries_steps', '1000')
  found = re.search(r'Found (\d+) GPU\(s\)', result.stdout)
  assert found, result.stdout
  found = int(found.group(1))
  placed = _placements(result.stdout)
  assert sorted(placed) == ['tower_0', 'tower_1'], result.stdout
  for i, tower in enumerate(sorted(placed)):
    if found == 0:
      assert placed[tower] == ['cpu:0'], result.stdout
    elif i < found:
      assert 'gpu:%d' % i in placed[tower], result.stdout
    else:
      assert 'gpu:%d' % i not in placed[tower], result.stdout
  assert tf.train.latest_checkpoint(str(tmp_path)).endswith('model.ckpt-2')


def test_num_gpus_below_one_is_a_one_line_error(tmp_path):
  result = run_script('cifar10_multi_gpu_train.py', '--num_gpus', '0',
                      '--train_dir', str(tmp_path), check=False)
  assert result.returncode != 0
  errors = result.stderr.strip().splitlines()
  assert len(errors) == 1 and '--num_gpus' in errors[0], result.stderr
  assert not os.listdir(str(tmp_path))


def test_multi_tower_training_updates_batch_norm_statistics(tmp_path):
  data = str(tmp_path / 'data')
  fakes.write_dataset(data)
  train_dir = str(tmp_path / 'train')
  run_script('cifar10_multi_gpu_train.py', '--data_dir', data,
             '--train_dir', train_dir, '--batch_size', '8', '--max_steps',
             '1', '--num_gpus', '2', '--tower_device', 'cpu',
             '--norm=batch_norm')
  tensors = fakes.read_checkpoint(train_dir)
  for layer in ('conv1', 'conv2', 'local3', 'local4'):
    assert np.abs(tensors[layer + '/moving_mean']).max() > 0, layer
    assert not np.allclose(tensors[layer + '/moving_variance'], 1.0), layer
