"""Checkpoints of other dtypes and of the other trainer.

The original tutorial's multi-GPU trainer writes a float32 global_step; a
--use_fp16 run writes float16 weights. Evaluation and classification read
both (casting the values); trainers refuse them in one line. The multi-tower
and the single-device trainers resume each other's directories.
"""
import hashlib
import os
import subprocess
import sys

from conftest import (REPO, classify, evaluate, grey_png, one_error_line,
                      run_script)
from fakes import write_dataset

FAST = ['--batch_size', '16', '--min_fraction_of_examples_in_queue', '0.05',
        '--save_checkpoint_steps', '10']

# The graph of the original tutorial's cifar10_multi_gpu_train.py, as far as
# its checkpoint goes: a float32 global_step made by tf.get_variable, the
# tutorial's variables and their moving averages, the loss averages under
# tower_0/, saved by a plain tf.train.Saver (absolute paths in its state).
ORIGINAL_MULTI_GPU = r'''
import sys
from cifar10lib.base import compat
from cifar10lib.base.compat import tf
from cifar10lib.training import cifar10
train_dir = sys.argv[1]
with tf.Graph().as_default(), tf.device('/cpu:0'):
  global_step = tf.get_variable('global_step', [],
                                initializer=tf.constant_initializer(0),
                                trainable=False)
  images = tf.random_uniform([4, 24, 24, 3])
  labels = tf.constant([0, 1, 2, 3])
  with tf.variable_scope(tf.get_variable_scope()):
    with tf.name_scope('tower_0') as scope:
      total_loss = cifar10.loss(cifar10.inference(images), labels, scope=scope)
      losses = tf.get_collection('losses', scope)
      tf.train.ExponentialMovingAverage(0.9, name='avg').apply(
          losses + [total_loss])
  tf.train.ExponentialMovingAverage(cifar10.MOVING_AVERAGE_DECAY,
                                    global_step).apply(tf.trainable_variables())
  saver = tf.train.Saver(tf.global_variables())
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    sess.run(global_step.assign(30.0))
    saver.save(sess, train_dir + '/model.ckpt', global_step=30)
  print(' '.join(sorted(v.op.name for v in tf.global_variables())))
'''

# Prints a checkpoint's variable names, then the scalar tags of event files.
NAMES_AND_TAGS = r'''
import glob, sys
from cifar10lib.base import compat
from cifar10lib.base.compat import tf
print(' '.join(name for name, _ in tf.train.list_variables(sys.argv[1])))
tags = set()
for path in glob.glob(sys.argv[2] + '/events.*'):
  for event in tf.train.summary_iterator(path):
    tags.update(v.tag for v in event.summary.value)
print('|'.join(sorted(tags)))
'''


def python(code, *args):
  return subprocess.run([sys.executable, '-c', code] + list(args), cwd=REPO,
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        universal_newlines=True, check=True).stdout


def digests(directory):
  out = {}
  for name in sorted(os.listdir(directory)):
    with open(os.path.join(directory, name), 'rb') as f:
      out[name] = hashlib.sha256(f.read()).hexdigest()
  return out


def test_original_multi_gpu_checkpoint_is_read_and_refused_by_trainers(
    tmp_path):
  data = str(tmp_path / 'data')
  write_dataset(data)
  train_dir = str(tmp_path / 'original')
  os.makedirs(train_dir)
  names = python(ORIGINAL_MULTI_GPU, train_dir).split()
  assert 'tower_0/cross_entropy/avg' in names and 'global_step' in names
  with open(os.path.join(train_dir, 'checkpoint')) as f:
    assert '"%s/model.ckpt-30"' % train_dir in f.read()  # absolute paths
  before = digests(train_dir)
  evaluated = evaluate(data, train_dir, tmp_path)
  assert 'global step 30, model.ckpt-30' in evaluated.stdout
  classified = classify(data, train_dir, grey_png(tmp_path))
  assert 'img.png: ' in classified.stdout
  for script, extra in (('cifar10_train.py', []),
                        ('cifar10_multi_gpu_train.py',
                         ['--num_gpus', '2', '--tower_device', 'cpu'])):
    result = run_script(script, '--data_dir', data, '--train_dir', train_dir,
                        '--max_steps', '40', *(FAST + extra), check=False)
    one_error_line(result, script, 'global_step is float32 there, int64 in '
                   'the model', 'cifar10_multi_gpu_train.py', status=1)
    assert 'Resuming' not in result.stdout
  assert digests(train_dir) == before


def test_checkpoints_across_precisions(tmp_path):
  data = str(tmp_path / 'data')
  write_dataset(data)
  fp32, fp16, local = (str(tmp_path / n) for n in ('fp32', 'fp16', 'local'))
  for train_dir, extra in ((fp32, []), (fp16, ['--use_fp16']),
                           (local, ['--top_layers', 'locally_connected'])):
    run_script('cifar10_train.py', '--data_dir', data, '--train_dir',
               train_dir, '--max_steps', '0', *(FAST + extra))
  for train_dir, extra in ((fp32, ['--use_fp16']), (fp16, []),
                           (local, ['--use_fp16', '--top_layers',
                                    'locally_connected'])):
    evaluated = evaluate(data, train_dir, tmp_path, *extra)
    assert 'global step 0, model.ckpt-0' in evaluated.stdout
  img = grey_png(tmp_path)
  for train_dir, extra in ((fp32, ['--use_fp16']), (fp16, [])):
    assert 'img.png: ' in classify(data, train_dir, img, *extra).stdout
  before = digests(fp32)
  result = run_script('cifar10_train.py', '--data_dir', data, '--train_dir',
                      fp32, '--max_steps', '10', '--use_fp16', *FAST,
                      check=False)
  one_error_line(result, 'cifar10_train.py', 'is float32 there, float16 in '
                 'the model', '--use_fp16', status=1)
  assert digests(fp32) == before


def test_multi_tower_and_single_device_trainers_resume_each_other(tmp_path):
  data = str(tmp_path / 'data')
  write_dataset(data)
  train_dir = str(tmp_path / 'train')
  run_script('cifar10_train.py', '--data_dir', data, '--train_dir', train_dir,
             '--max_steps', '10', *FAST)
  towers = run_script('cifar10_multi_gpu_train.py', '--num_gpus', '2',
                      '--tower_device', 'cpu', '--data_dir', data,
                      '--train_dir', train_dir, '--max_steps', '20', *FAST)
  assert 'Resuming from %s/model.ckpt-10' % train_dir in towers.stdout
  assert 'step 20,' in towers.stdout
  names, tags = python(NAMES_AND_TAGS, os.path.join(train_dir, 'model.ckpt-20'),
                       train_dir).splitlines()
  names = names.split()
  for name in ('cross_entropy/avg', 'total_loss/avg',
               'local3/weight_loss/avg', 'global_step'):
    assert name in names
  assert not [n for n in names if n.startswith('tower_')]
  tags = tags.split('|')
  for tag in ('cross_entropy', 'cross_entropy (raw)', 'total_loss',
              'local3/weight_loss (raw)'):
    assert tag in tags
  assert not [t for t in tags if t.startswith('tower_')]
  single = run_script('cifar10_train.py', '--data_dir', data, '--train_dir',
                      train_dir, '--max_steps', '30', *FAST)
  assert 'Resuming from %s/model.ckpt-20' % train_dir in single.stdout
  assert 'step 30,' in single.stdout
