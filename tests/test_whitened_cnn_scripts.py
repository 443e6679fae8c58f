"""The whitened network through the scripts, on tiny data.

Train part of the recipe, resume to its end (the triangular rate continues
where it stopped), evaluate with and without test-time augmentation,
classify an image, and train with two towers.
"""
import os
import re

import numpy as np

import fakes
from conftest import run_script
from test_networks_scripts import _png
from test_whitened_cnn import triangle
from cifar10lib import fast_training

TIMEOUT = 400   # a bound against hangs on a loaded machine, not a timing
PRECISION_LINE = re.compile(r'precision @ 1 = (\d\.\d{3}) \((\d+)/(\d+) correct')


def _train(data_dir, train_dir, *extra, script='cifar10_train.py'):
  return run_script(script, '--data_dir', data_dir, '--train_dir', train_dir,
                    '--model=whitened_cnn', '--batch_size=8', '--epochs=2',
                    '--log_frequency=1', '--save_summaries_steps=1', *extra,
                    timeout=TIMEOUT)


def test_train_resume_evaluate_with_tta_and_classify(tmp_path):
  data_dir, train_dir = str(tmp_path / 'data'), str(tmp_path / 'train')
  # 40 training records: 5 steps of 8 an epoch, 10 for --epochs=2.
  fakes.write_dataset(data_dir, train_per_file=8, test_records=30,
                      learnable=True)
  first = _train(data_dir, train_dir, '--max_steps=4')
  assert 'Done at step 4' in first.stdout
  second = _train(data_dir, train_dir)
  assert 'Resuming from' in second.stdout
  assert 'Done at step 10' in second.stdout
  # The summaries of both runs: the rate is the triangle over all 10 steps
  # (a summary is tagged with the step its run started or ended at).
  rates = fakes.scalar_events(train_dir)['learning_rate']
  assert max(step for step, _ in rates) >= 8
  base = fast_training.per_example_rate(11.5, 0.85) * 8
  for step, rate in rates:
    assert any(np.isclose(rate, base * triangle(s, 10),
                          rtol=1e-5) for s in (step - 1, step)), (step, rate)
  counts = {}
  for tta in ('0', '1', '2'):
    result = run_script('cifar10_eval.py', '--data_dir', data_dir,
                        '--checkpoint_dir', train_dir,
                        '--eval_dir', str(tmp_path / 'eval'),
                        '--model=whitened_cnn', '--run_once', '--tta', tta,
                        timeout=TIMEOUT)
    match = PRECISION_LINE.search(result.stdout)
    assert match and match.group(3) == '30', result.stdout
    counts[tta] = int(match.group(2))
  assert 'moving averages' not in result.stdout  # the recipe's raw weights
  image = _png(str(tmp_path / 'image.png'), 5)
  result = run_script('cifar10_classify.py', '--data_dir', data_dir,
                      '--checkpoint_dir', train_dir, '--model=whitened_cnn',
                      image, timeout=TIMEOUT)
  assert re.match(r'%s: \w+ \(\d\.\d{3}\)' % re.escape(image),
                  result.stdout), result.stdout


def test_two_towers_and_a_mismatched_input_mode(tmp_path):
  data_dir = str(tmp_path / 'data')
  fakes.write_dataset(data_dir, train_per_file=8, test_records=10)
  train_dir = str(tmp_path / 'towers')
  result = _train(data_dir, train_dir, '--max_steps=2', '--num_gpus=2',
                  '--tower_device=cpu', '--batch_size=4',
                  script='cifar10_multi_gpu_train.py')
  assert 'Done at step 2' in result.stdout
  assert os.path.exists(os.path.join(train_dir, 'checkpoint'))
  refused = run_script('cifar10_train.py', '--data_dir', data_dir,
                       '--train_dir', str(tmp_path / 'no'),
                       '--model=whitened_cnn', '--batch_size=8',
                       '--augmentation=tutorial', check=False,
                       timeout=TIMEOUT)
  assert refused.returncode == 1
  assert refused.stderr.count('\n') == 1
  assert '--augmentation=translate_flip' in refused.stderr
