"""Every dataset crossed with every option that reads its images itself.

The queue pipelines are not the only readers of a dataset's files: the
held-out validation split (--validation_examples, which --lr_schedule=plateau
evaluates during training), the training set's mean (--preprocessing=
mean_image or channel_mean) and the classifier (your own image, decoded and
scaled to the dataset's geometry) read them their own way. Each dataset's
geometry (CIFAR's 32x32x3 records, MNIST's 28x28x1 IDX files) must reach all
of them; here each combination trains, evaluates its validation split and
classifies an image, through the scripts, on tiny data.
"""
import os

import numpy as np
import pytest

from conftest import grey_png, run_script
import fakes

# Every dataset and every preprocessing at least once; MNIST, whose geometry
# differs from CIFAR's, with both modes that keep a mean of its images.
CASES = [('cifar10', 'channel_mean'), ('cifar100', 'standardize'),
         ('mnist', 'mean_image'), ('mnist', 'channel_mean')]
VALIDATION = 40


def _write(dataset, data_dir):
  if dataset == 'mnist':
    fakes.write_idx(data_dir, train=200, test=40)
  else:
    fmt = fakes.CIFAR100 if dataset == 'cifar100' else fakes.CIFAR10
    fakes.write_dataset(data_dir, train_per_file=100, test_records=40,
                        fmt=fmt)


@pytest.mark.parametrize('dataset,preprocessing', CASES)
def test_plateau_validation_and_classify(dataset, preprocessing, tmp_path):
  data, train_dir = str(tmp_path / 'data'), str(tmp_path / 'train')
  _write(dataset, data)
  common = ['--dataset=' + dataset, '--data_dir', data,
            '--preprocessing=' + preprocessing]
  trained = run_script(
      'cifar10_train.py', *common, '--train_dir', train_dir,
      '--max_steps', '4', '--batch_size', '8', '--lr_schedule=plateau',
      '--validation_examples', str(VALIDATION), '--plateau_eval_steps', '2',
      '--min_fraction_of_examples_in_queue=0.05')
  assert 'Traceback' not in trained.stderr, trained.stderr
  points = [l for l in trained.stdout.splitlines()
            if 'validation precision @ 1' in l]
  # Steps 2 and 4 each score the whole held-out split.
  assert len(points) == 2, trained.stdout
  assert all('/%d correct' % VALIDATION in l for l in points), points

  evaluated = run_script(
      'cifar10_eval.py', *common, '--checkpoint_dir', train_dir,
      '--eval_dir', str(tmp_path / 'eval'), '--run_once',
      '--eval_data=validation', '--validation_examples', str(VALIDATION),
      '--batch_size', '8')
  assert '/%d correct, global step 4' % VALIDATION in evaluated.stdout

  classified = run_script(
      'cifar10_classify.py', *common, '--checkpoint_dir', train_dir,
      '--top_k=2', grey_png(tmp_path))
  line, = [l for l in classified.stdout.splitlines() if 'img.png' in l]
  probabilities = [float(p.rstrip(')').split('(')[-1])
                   for p in line.split(': ', 1)[1].split(', ')]
  assert len(probabilities) == 2
  assert 1 >= probabilities[0] >= probabilities[1] >= 0
  assert os.path.isfile(os.path.join(train_dir, 'checkpoint'))
  assert np.isfinite(probabilities).all()
