"""Every --model through every script, end to end, on tiny data.

Each network trains, resumes, evaluates (exact counts), classifies, and
trains under the multi-tower and the distributed trainers; a checkpoint of
another network is refused in one line naming both. Batches of 4 images and
a few steps keep VGG-16 and ResNet-34 affordable on two CPU cores; that the
loss goes down is checked on a fixed batch in test_networks.py.
"""
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, run_script, run_scripts
from script_runs import kill_session
import fakes
from fakes import write_dataset

# ResNet-20 runs by default; the big networks only with -m slow (pytest.ini).
NAMES = [pytest.param(name, marks=pytest.mark.slow)
         if name != 'resnet20' else name
         for name in ('alexnet', 'googlenet', 'resnet20', 'resnet34', 'vgg16')]
CLASS_NAMES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog',
               'horse', 'ship', 'truck']
LOSS_LINE = re.compile(r'^\S+ \S+: step (\d+), loss = (\d+\.\d\d) \(', re.M)
TIMEOUT = 400   # a bound against hangs on a loaded machine, not a timing


def _checkpoint_step(train_dir):
  with open(os.path.join(train_dir, 'checkpoint')) as f:
    return int(re.search(r'^model_checkpoint_path: "model\.ckpt-(\d+)"',
                         f.read(), re.M).group(1))


def _png(path, seed):
  return fakes.write_png(path, np.random.RandomState(seed).randint(
      0, 256, [32, 32, 3]))


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
  path = tmp_path_factory.mktemp('data')
  write_dataset(path, train_per_file=20, test_records=30, learnable=True)
  return str(path)


def _train(script, data_dir, train_dir, name, steps, *extra):
  result = run_script(
      script, '--data_dir', data_dir, '--train_dir', train_dir,
      '--model', name, '--batch_size=4', '--max_steps=%d' % steps,
      '--log_frequency=2', '--min_fraction_of_examples_in_queue=0.05',
      *extra, timeout=TIMEOUT)
  assert 'Traceback' not in result.stderr
  assert _checkpoint_step(train_dir) == steps
  return result


@pytest.mark.parametrize('name', NAMES)
def test_trains_resumes_evaluates_and_classifies(name, tiny_data, tmp_path):
  train_dir = str(tmp_path / 'train')
  first = _train('cifar10_train.py', tiny_data, train_dir, name, 4)
  logged = LOSS_LINE.findall(first.stdout)
  assert [int(step) for step, _ in logged] == [2, 4], first.stdout
  assert all(np.isfinite(float(loss)) for _, loss in logged)
  second = _train('cifar10_train.py', tiny_data, train_dir, name, 6)
  assert 'Resuming from %s' % os.path.join(train_dir, 'model.ckpt-4') in (
      second.stdout)
  assert [int(s) for s, _ in LOSS_LINE.findall(second.stdout)] == [6]

  evaluated = run_script(
      'cifar10_eval.py', '--run_once', '--data_dir', tiny_data,
      '--checkpoint_dir', train_dir, '--eval_dir', str(tmp_path / 'eval'),
      '--model', name, '--batch_size=4', '--num_examples=10',
      timeout=TIMEOUT)
  # 10 examples in batches of 4: the last batch is cut, none counted twice.
  match = re.search(r'precision @ 1 = (\d\.\d{3}) \((\d+)/10 correct, global '
                    r'step 6, model\.ckpt-6\)', evaluated.stdout)
  assert match, evaluated.stdout
  assert float(match.group(1)) == int(match.group(2)) / 10.0

  image = _png(str(tmp_path / 'image.png'), seed=3)
  classified = run_script(
      'cifar10_classify.py', '--data_dir', tiny_data, '--checkpoint_dir',
      train_dir, '--model', name, image, timeout=TIMEOUT)
  line, = classified.stdout.splitlines()
  shown = line.split(': ', 1)[1].split(', ')
  assert len(shown) == 3 and all(
      item.split(' (')[0] in CLASS_NAMES for item in shown), line
  probabilities = [float(item.split('(')[1].rstrip(')')) for item in shown]
  assert probabilities == sorted(probabilities, reverse=True)
  # Printed to 3 decimals: three rounded values may exceed 1 by 0.0015.
  assert 0.0 < sum(probabilities) <= 1.0 + 3 * 0.0005 + 1e-9


@pytest.mark.parametrize('name', NAMES)
def test_multi_tower_and_distributed_trainers(name, tiny_data, tmp_path):
  multi_dir = str(tmp_path / 'multi')
  multi = _train('cifar10_multi_gpu_train.py', tiny_data, multi_dir, name, 2,
                 '--num_gpus=2', '--tower_device=cpu')
  assert [int(s) for s, _ in LOSS_LINE.findall(multi.stdout)] == [2]
  assert 'tower_1 ran on' in multi.stdout

  dist_dir = str(tmp_path / 'dist')
  ps_port, worker_port = fakes.free_ports(2)
  hosts = ['--ps_hosts=127.0.0.1:%d' % ps_port,
           '--worker_hosts=127.0.0.1:%d' % worker_port]
  env = dict(os.environ)
  env.pop('TF_CONFIG', None)
  ps = subprocess.Popen(
      [sys.executable, os.path.join(REPO, 'cifar10_dist_train.py')] + hosts +
      ['--job_name=ps', '--task_index=0'], cwd=REPO, env=env,
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
      universal_newlines=True, start_new_session=True)
  try:
    _train('cifar10_dist_train.py', tiny_data, dist_dir, name, 2, *(
        hosts + ['--job_name=worker', '--task_index=0']))
    ps.send_signal(signal.SIGTERM)
    out, _ = ps.communicate(timeout=TIMEOUT)
    assert 'ps 0: stopped by SIGTERM' in out
  finally:
    kill_session(ps)


def _refused(result, script, other, name):
  assert result.returncode == 1, result.stdout + result.stderr
  assert 'Traceback' not in result.stderr
  line, = result.stderr.strip().splitlines()
  assert line.startswith('%s: error: ' % script), line
  assert 'holds a --model=%s network, not this --model=%s one' % (
      other, name) in line, line


def test_a_checkpoint_of_another_network_is_refused_naming_both(tiny_data,
                                                                 tmp_path):
  train_dir = str(tmp_path / 'train')
  _train('cifar10_train.py', tiny_data, train_dir, 'resnet20', 1)
  tutorial_dir = str(tmp_path / 'tutorial')
  _train('cifar10_train.py', tiny_data, tutorial_dir, 'tutorial', 1)
  before = sorted(os.listdir(train_dir))
  common = ['--data_dir', tiny_data, '--batch_size=4']
  eval_dir = ['--eval_dir', str(tmp_path / 'eval')]
  image = _png(str(tmp_path / 'image.png'), seed=0)
  # (saved network, the refusing script's argv)
  cases = [
      ('resnet20', ['cifar10_train.py', '--train_dir', train_dir,
                    '--model=tutorial', '--max_steps=2'] + common),
      ('resnet20', ['cifar10_train.py', '--train_dir', train_dir,
                    '--model=resnet34', '--max_steps=2'] + common),
      ('resnet20', ['cifar10_multi_gpu_train.py', '--train_dir', train_dir,
                    '--model=googlenet', '--num_gpus=2', '--tower_device=cpu',
                    '--max_steps=2'] + common),
      ('resnet20', ['cifar10_eval.py', '--run_once', '--checkpoint_dir',
                    train_dir, '--model=alexnet', '--num_examples=4']
       + eval_dir + common),
      ('resnet20', ['cifar10_classify.py', '--data_dir', tiny_data,
                    '--checkpoint_dir', train_dir, '--model=vgg16', image]),
      # And the other way: the tutorial's checkpoint, another network.
      ('tutorial', ['cifar10_eval.py', '--run_once', '--checkpoint_dir',
                    tutorial_dir, '--model=resnet20', '--num_examples=4']
       + eval_dir + common),
  ]
  results = run_scripts([argv for _, argv in cases])
  for (saved, argv), result in zip(cases, results):
    model = [a for a in argv if a.startswith('--model=')][0][len('--model='):]
    _refused(result, argv[0], saved, model)
    if argv[0] == 'cifar10_train.py':
      assert 'cannot resume' in result.stderr
  assert sorted(os.listdir(train_dir)) == before


def test_the_tutorials_flags_are_refused_with_another_network(tiny_data,
                                                               tmp_path):
  result = run_script('cifar10_train.py', '--data_dir', tiny_data,
                      '--train_dir', str(tmp_path / 'train'),
                      '--model=alexnet', '--dropout_keep_prob=0.5',
                      '--batch_size=4', '--max_steps=1', check=False,
                      timeout=TIMEOUT)
  assert result.returncode == 1
  assert result.stderr.strip() == (
      "cifar10_train.py: error: --dropout_keep_prob shapes the tutorial's "
      "network only, not --model=alexnet")
  assert not os.path.exists(os.path.join(str(tmp_path / 'train'),
                                         'checkpoint'))
