"""--help and -h of every script: status 0, the flags grouped by what they
do, and no TensorFlow import (the help is printed before it would happen).

The runs are fresh interpreters whose PYTHONPATH puts first a `tensorflow`
package that fails to import: a help that imported TensorFlow would fail.
"""
import re

import pytest

from conftest import run_script
from cifar10lib.base import script_help

SCRIPTS = ['cifar10_train.py', 'cifar10_multi_gpu_train.py',
           'cifar10_dist_train.py', 'cifar10_eval.py', 'cifar10_classify.py',
           'cifar10_export.py']


@pytest.fixture(scope='module')
def no_tensorflow(tmp_path_factory):
  """PYTHONPATH under which `import tensorflow` raises ImportError."""
  root = tmp_path_factory.mktemp('no_tensorflow')
  (root / 'tensorflow').mkdir()
  (root / 'tensorflow' / '__init__.py').write_text(
      'raise ImportError("the help imported TensorFlow")\n')
  return {'PYTHONPATH': str(root)}


def _flag_names(text):
  return re.findall(r'^  (?:-\w,)?--(?:\[no\])?(\w+)', text, re.M)


@pytest.mark.parametrize('script', SCRIPTS)
@pytest.mark.parametrize('arg', ['--help', '-h'])
def test_help_exits_zero_without_tensorflow(script, arg, no_tensorflow):
  result = run_script(script, arg, env=no_tensorflow, check=False)
  assert result.returncode == 0, result.stderr
  assert result.stderr == ''
  text = result.stdout
  assert script_help.HEADER in text
  titles = re.findall(r'^(\S[^\n]*):$', text.split(script_help.HEADER)[1],
                      re.M)
  order = [title for title, _ in script_help.SECTIONS] + ['Other flags']
  assert titles == [t for t in order if t in titles]
  assert titles[0] == 'The tutorial\'s flags'
  names = _flag_names(text)
  assert len(names) == len(set(names)), 'a flag listed twice'
  assert 'verbose' in names and 'run_with_pdb' not in names


def test_helpfull_adds_absls_own_flags(no_tensorflow):
  result = run_script('cifar10_eval.py', '--helpfull', env=no_tensorflow,
                      check=False)
  assert result.returncode == 0, result.stderr
  names = _flag_names(result.stdout)
  assert 'run_with_pdb' in names and 'eval_dir' in names
  assert 'absl\'s own flags:' in result.stdout


def test_help_after_double_dash_is_not_a_help_request():
  assert script_help.requested(['--max_steps=5', '-h'])
  assert not script_help.requested(['--', '-h'])
  assert not script_help.requested(['--hel'])


def test_help_texts_say_what_users_ask(no_tensorflow):
  text = run_script('cifar10_train.py', '-h', env=no_tensorflow).stdout
  entries = dict((m.group(1), m.group(2)) for m in re.finditer(
      r'^  --(?:\[no\])?(\w+): (.*?)(?=^  --|^\S|\Z)', text, re.M | re.S))
  data_dir = ' '.join(entries['data_dir'].split())
  for words in ('cifar-10-batches-bin/', 'cifar-100-binary/', 'mnist/'):
    assert words in data_dir
  assert '--precision' in entries['use_fp16']
  assert '--use_fp16' in entries['precision']
  # The tutorial's section holds its flags, the data section --dataset.
  tutorial = text.split('The tutorial\'s flags:')[1].split('\n\n')[0]
  assert set(_flag_names(tutorial)) == {
      'batch_size', 'data_dir', 'log_device_placement', 'log_frequency',
      'max_steps', 'train_dir', 'use_fp16'}
