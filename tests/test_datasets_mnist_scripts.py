"""The scripts with --dataset=mnist, run as a student runs them (issue 14).

Small learnable IDX files (fakes.write_idx: class c is a bright block
at its own place) train a model in a few steps; train, resume, exact eval,
validation, multi-tower, distributed and classify are run as processes.
"""
import os
import re
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, run_script
from script_runs import kill_session
from fakes import write_idx

TRAIN, TEST, BATCH = 600, 200, 32
LINE = re.compile(r'^\S+ \S+: step (\d+), loss = [0-9.]+ \([0-9.]+ examples/sec;'
                  r' [0-9.]+ sec/batch\), epoch (\d+\.\d)$', re.M)


def free_port():
  s = socket.socket()
  s.bind(('127.0.0.1', 0))
  port = s.getsockname()[1]
  s.close()
  return port


def epochs(output):
  """{step: epoch} of the progress lines."""
  return {int(m.group(1)): m.group(2) for m in LINE.finditer(output)}


def precision(output, total):
  m = re.search(r'precision @ 1 = ([0-9.]+) \((\d+)/(\d+) correct', output)
  assert m, output
  assert int(m.group(3)) == total, output
  return int(m.group(2)) / total


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  path = tmp_path_factory.mktemp('mnist_data')
  write_idx(path, train=TRAIN, test=TEST, learnable=True)
  return str(path)


@pytest.fixture(scope='module')
def softmax_dir(tmp_path_factory, data_dir):
  """A softmax model trained 120 steps, checked by eval."""
  train_dir = str(tmp_path_factory.mktemp('softmax'))
  run_script('cifar10_train.py', '--dataset=mnist', '--model=softmax',
             '--data_dir=' + data_dir, '--train_dir=' + train_dir,
             '--max_steps=120', '--batch_size=%d' % BATCH,
             '--log_frequency=40')
  return train_dir


def _eval(data_dir, checkpoint_dir, tmp_path, *args):
  result = run_script('cifar10_eval.py', '--dataset=mnist', '--run_once',
                      '--data_dir=' + data_dir,
                      '--checkpoint_dir=' + checkpoint_dir,
                      '--eval_dir=' + str(tmp_path / 'eval'), *args)
  return result.stdout


def test_cnn_train_resume_exact_eval(data_dir, tmp_path):
  train_dir = str(tmp_path / 'train')
  common = ['--dataset=mnist', '--data_dir=' + data_dir,
            '--train_dir=' + train_dir, '--batch_size=%d' % BATCH,
            '--log_frequency=10']
  out = run_script('cifar10_train.py', '--max_steps=20', *common).stdout
  # epoch = step * 32 / 600
  assert epochs(out) == {10: '0.5', 20: '1.1'}, out
  out = run_script('cifar10_train.py', '--max_steps=30', *common).stdout
  assert 'Resuming from %s/model.ckpt-20' % train_dir in out
  assert epochs(out) == {30: '1.6'}, out
  out = _eval(data_dir, train_dir, tmp_path)
  assert 'global step 30' in out
  precision(out, TEST)     # each of the 200 test images once
  # TensorBoard's image summaries show the digits: 28x28, one channel.
  from cifar10lib.base.compat import tf
  images = [v.image for name in os.listdir(train_dir)
            if name.startswith('events.out.tfevents.')
            for event in tf.train.summary_iterator(os.path.join(train_dir,
                                                                name))
            for v in event.summary.value if v.tag.startswith('images/')]
  assert images
  assert {(i.height, i.width, i.colorspace) for i in images} == {(28, 28, 1)}


def test_softmax_learns_the_digits(data_dir, softmax_dir, tmp_path):
  assert precision(_eval(data_dir, softmax_dir, tmp_path,
                         '--model=softmax'), TEST) > 0.8
  assert precision(_eval(data_dir, softmax_dir, tmp_path, '--model=softmax',
                         '--eval_data=train_eval'), TRAIN) > 0.8


def test_validation_examples_hold_out_the_last_records(data_dir, tmp_path):
  train_dir = str(tmp_path / 'train')
  out = run_script('cifar10_train.py', '--dataset=mnist', '--model=softmax',
                   '--data_dir=' + data_dir, '--train_dir=' + train_dir,
                   '--validation_examples=100', '--max_steps=10',
                   '--batch_size=50', '--log_frequency=10').stdout
  assert epochs(out) == {10: '1.0'}, out          # 10 * 50 / 500
  out = _eval(data_dir, train_dir, tmp_path, '--model=softmax',
              '--eval_data=validation', '--validation_examples=100')
  precision(out, 100)


def test_multi_tower(data_dir, tmp_path):
  train_dir = str(tmp_path / 'train')
  out = run_script('cifar10_multi_gpu_train.py', '--dataset=mnist',
                   '--num_gpus=2', '--tower_device=cpu',
                   '--data_dir=' + data_dir, '--train_dir=' + train_dir,
                   '--max_steps=10', '--batch_size=16',
                   '--log_frequency=5').stdout
  assert epochs(out) == {5: '0.3', 10: '0.5'}, out   # 2 towers x 16
  precision(_eval(data_dir, train_dir, tmp_path), TEST)


def test_distributed(data_dir, tmp_path):
  ps, worker = free_port(), free_port()
  hosts = ['--ps_hosts=127.0.0.1:%d' % ps,
           '--worker_hosts=127.0.0.1:%d' % worker]
  train_dir = str(tmp_path / 'train')
  env = dict(os.environ)
  env.pop('TF_CONFIG', None)
  log = open(str(tmp_path / 'ps.log'), 'w')
  ps_proc = subprocess.Popen(
      [sys.executable, os.path.join(REPO, 'cifar10_dist_train.py'),
       '--job_name=ps', '--task_index=0', '--dataset=mnist'] + hosts,
      cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
      start_new_session=True)
  log.close()
  try:
    out = run_script('cifar10_dist_train.py', '--job_name=worker',
                     '--task_index=0', '--dataset=mnist', '--model=softmax',
                     '--data_dir=' + data_dir, '--train_dir=' + train_dir,
                     '--max_steps=12', '--batch_size=%d' % BATCH,
                     '--log_frequency=6', *hosts,
                     env={'TF_CONFIG': ''}).stdout
  finally:
    kill_session(ps_proc)
  assert epochs(out) == {6: '0.3', 12: '0.6'}, out
  precision(_eval(data_dir, train_dir, tmp_path, '--model=softmax'), TEST)


def _png(path, pixels):
  """Writes uint8 pixels [h, w, channels] as a PNG."""
  from cifar10lib.base.compat import tf
  with tf.Graph().as_default(), tf.Session() as sess:
    data = sess.run(tf.image.encode_png(tf.constant(pixels, tf.uint8)))
  with open(path, 'wb') as f:
    f.write(data)


def test_classify_digit_pictures(data_dir, softmax_dir, tmp_path):
  # A 3 as a student draws it: dark red on white, 56x84, colour.
  three = np.full((56, 84, 3), 255, np.uint8)
  three[2 * 2:2 * 12, 3 * 17:3 * 20] = [90, 0, 0]
  # A 7 as MNIST draws it: light on dark, 28x28, grey.
  seven = np.zeros((28, 28, 1), np.uint8)
  seven[16:26, 12:15] = 230
  paths = [str(tmp_path / 'three.png'), str(tmp_path / 'seven.png')]
  _png(paths[0], three)
  _png(paths[1], seven)
  out = run_script('cifar10_classify.py', '--dataset=mnist',
                   '--model=softmax', '--data_dir=' + data_dir,
                   '--checkpoint_dir=' + softmax_dir, *paths).stdout
  lines = out.strip().splitlines()
  assert len(lines) == 2, out
  for path, digit, line in zip(paths, ['3', '7'], lines):
    m = re.match(r'^%s: (\d) \(([0-9.]+)\), (\d) \([0-9.]+\), (\d) '
                 r'\([0-9.]+\)$' % re.escape(path), line)
    assert m, line
    assert m.group(1) == digit, out


def test_bad_idx_file_is_one_line_and_writes_nothing(data_dir, tmp_path):
  bad = tmp_path / 'bad'
  shutil.copytree(data_dir, str(bad))
  labels = bad / 'mnist' / 'train-labels-idx1-ubyte'
  labels.write_bytes(labels.read_bytes()[:300])
  train_dir = tmp_path / 'train'
  result = run_script('cifar10_train.py', '--dataset=mnist',
                      '--data_dir=' + str(bad), '--train_dir=' + str(train_dir),
                      '--max_steps=1', check=False)
  assert result.returncode == 1
  assert result.stderr == (
      'cifar10_train.py: error: %s: truncated IDX file: its header says 600 '
      'labels (608 bytes), the file has 300 bytes\n' % labels)
  assert not train_dir.exists()


def test_failed_download_is_one_line_and_writes_nothing(tmp_path):
  data_dir = tmp_path / 'data'
  url = 'http://127.0.0.1:%d/mnist/' % free_port()   # nothing listens
  result = run_script('cifar10_train.py', '--dataset=mnist',
                      '--data_dir=' + str(data_dir), '--data_url=' + url,
                      '--train_dir=' + str(tmp_path / 'train'), check=False)
  assert result.returncode == 1
  lines = result.stderr.splitlines()
  assert len(lines) == 1, result.stderr
  assert lines[0].startswith('cifar10_train.py: error: --data_dir=%s has no '
                             'mnist/ and it could not be fetched from %s ('
                             % (data_dir, url))
  assert 'train-images-idx3-ubyte.gz' in lines[0]
  assert not data_dir.exists() and not (tmp_path / 'train').exists()
