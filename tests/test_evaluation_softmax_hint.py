"""A softmax-regression checkpoint evaluated without --model=softmax: the
one-line error names the flag that fixes it.

Softmax regression has no variable the tutorial's network lacks, so it is
recognised as the network whose only weights are softmax_linear's.
"""
import numpy as np

import fakes
from conftest import run_script
from cifar10lib import models


def test_softmax_is_recognised_by_its_only_weights():
  assert models.identify({'softmax_linear/weights': [784, 10],
                          'softmax_linear/biases': [10],
                          'global_step': []}) == 'softmax'
  tutorial = {name: shape for name, shape in fakes.model_shapes().items()}
  assert models.identify(tutorial) == 'tutorial'


def test_eval_of_a_softmax_checkpoint_names_model_softmax(tmp_path):
  data_dir = tmp_path / 'data'
  fakes.write_idx(data_dir, train=30, test=20)
  train_dir = tmp_path / 'train'
  train_dir.mkdir()
  fakes.write_checkpoint(str(train_dir / 'model.ckpt-3'), {
      'softmax_linear/weights': np.zeros([784, 10], np.float32),
      'softmax_linear/biases': np.zeros([10], np.float32),
      'global_step': np.int64(3)})
  args = ['--dataset=mnist', '--data_dir', str(data_dir), '--checkpoint_dir',
          str(train_dir), '--eval_dir', str(tmp_path / 'eval'), '--run_once',
          '--batch_size', '10']
  result = run_script('cifar10_eval.py', *args, check=False)
  assert result.returncode == 1
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1, result.stderr
  assert ('holds a --model=softmax network, not this --model=tutorial one'
          in lines[0])
  # With the flag, the same checkpoint evaluates (raw weights: no averages).
  result = run_script('cifar10_eval.py', '--model=softmax', *args)
  assert 'precision @ 1 = ' in result.stdout
