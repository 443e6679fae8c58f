"""cifar10_export.py: a SavedModel that gives cifar10_classify.py's answers
elsewhere, and refuses what it cannot write.

The tutorial's network trained two steps is exported, then loaded by a fresh
interpreter that imports only TensorFlow and numpy (outside the repository)
and by `saved_model_cli run`: both signatures give the probabilities that
cifar10_classify.py prints for the same images (to its 3 decimals), the
variables are the checkpoint's moving averages, and --tta=1 is the softmax
of the mean of the image's and its mirror's logits (a numpy oracle from the
plain export's probabilities). A SavedModel written by TensorFlow 1.15 loads
on TensorFlow 2.x. Bad input is one line and leaves nothing behind.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

import fakes
from conftest import (one_error_line, run_script, run_scripts,
                      run_unprivileged, snapshot)
from export_checks import (PRINTED_TOLERANCE, REPO, SAME_TOLERANCE,
                           classified, interpreter, load_elsewhere)
from cifar10lib.evaluation import exporting
from cifar10lib.base.compat import tf

NAMES = fakes.CIFAR10.label_names['batches.meta.txt']
IMAGES = np.random.RandomState(7).randint(0, 256, [4, 32, 32, 3]).astype(
    np.uint8)
# A photo of another size: serving_bytes scales it as the classifier does.
ODD = np.random.RandomState(8).randint(0, 256, [45, 37, 3]).astype(np.uint8)


class Exported(object):
  """The shared exports and what the classifier printed."""


@pytest.fixture(scope='module')
def exported(tmp_path_factory, readonly_data_dir, trained_two_steps):
  base = tmp_path_factory.mktemp('export')
  result = Exported()
  result.base = base
  result.pngs = [fakes.write_png(base / ('%d.png' % i), image)
                 for i, image in enumerate(IMAGES)]
  result.odd = fakes.write_png(base / 'odd.png', ODD)
  result.plain = str(base / 'plain' / '1')
  result.tta = str(base / 'tta' / '1')
  common = ['--data_dir', readonly_data_dir, '--checkpoint_dir',
            trained_two_steps]
  result.out = run_script('cifar10_export.py', *common + [
      '--export_dir', result.plain]).stdout
  run_script('cifar10_export.py', *common + ['--export_dir', result.tta,
                                             '--tta=1'])
  result.printed = classified(run_script(
      'cifar10_classify.py', *common + ['--top_k=10'] + result.pngs +
      [result.odd]), NAMES)
  result.loaded, result.loader_out = load_elsewhere(
      sys.executable, base, [result.plain, result.tta],
      np.concatenate([IMAGES, IMAGES[:, :, ::-1]]),
      result.pngs + [result.odd])
  return result


def test_export_says_what_it_wrote(exported, trained_two_steps):
  assert exported.out.splitlines()[-1] == (
      'Exported %s (global step 2) to %s: signatures serving_default (uint8 '
      'images) and serving_bytes (PNG or JPEG bytes).' % (
          os.path.join(trained_two_steps, 'model.ckpt-2'), exported.plain))
  assert sorted(os.listdir(os.path.dirname(exported.plain))) == ['1']
  assert sorted(os.listdir(exported.plain)) == ['saved_model.pb', 'variables']


def test_a_fresh_tensorflow_gives_the_classifiers_probabilities(exported):
  assert 'loaded with TensorFlow %s' % tf.__version__ in exported.loader_out
  out = exported.loaded[0]
  images = out['serving_default']
  assert images['probabilities'].dtype == np.float32
  assert images['probabilities'].shape == (8, 10)
  assert images['classes'].dtype == np.int64
  np.testing.assert_allclose(images['probabilities'].sum(axis=1), 1.0,
                             atol=1e-5)
  assert (images['classes'] == images['probabilities'].argmax(axis=1)).all()
  assert list(images['names']) == [NAMES[c] for c in images['classes']]
  for i, png in enumerate(exported.pngs):
    assert np.abs(images['probabilities'][i] - exported.printed[png]).max() <= (
        PRINTED_TOLERANCE), (png, images['probabilities'][i])
  # A 32x32 PNG decodes to its pixels exactly: the same answer as the uint8
  # images; the odd-sized photo is scaled by area averaging, as classify does.
  encoded = out['serving_bytes']
  np.testing.assert_allclose(encoded['probabilities'][:4],
                             images['probabilities'][:4], atol=SAME_TOLERANCE)
  assert np.abs(encoded['probabilities'][4] -
                exported.printed[exported.odd]).max() <= PRINTED_TOLERANCE
  assert list(encoded['names']) == [NAMES[c] for c in encoded['classes']]


def test_tta_is_the_softmax_of_the_mean_logits_with_the_mirror(exported):
  # log p is the logits up to a constant per image, which the softmax drops.
  plain = exported.loaded[0]['serving_default']['probabilities']
  tta = exported.loaded[1]['serving_default']['probabilities']
  logits = 0.5 * (np.log(plain[:4]) + np.log(plain[4:]))
  oracle = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
  np.testing.assert_allclose(tta[:4], oracle, atol=SAME_TOLERANCE)
  np.testing.assert_allclose(tta[4:], oracle, atol=SAME_TOLERANCE)
  assert np.abs(plain[:4] - plain[4:]).max() > 1e-4   # mirrors differ


def _saved_model_cli(*args):
  cli = os.path.join(os.path.dirname(sys.executable), 'saved_model_cli')
  if not os.path.exists(cli):
    pytest.skip('no saved_model_cli beside %s' % sys.executable)
  result = subprocess.run([cli] + [str(a) for a in args],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=240)
  assert result.returncode == 0, result.stdout + result.stderr
  return result.stdout


def test_saved_model_cli_shows_and_runs_the_signatures(exported, tmp_path):
  shown = _saved_model_cli('show', '--dir', exported.plain, '--all')
  default = shown.split("signature_def['serving_default']:")[1]
  assert "inputs['images']" in default and 'DT_UINT8' in default
  assert 'shape: (-1, 32, 32, 3)' in default
  assert "signature_def['serving_bytes']:" in shown
  for output in ('probabilities', 'classes', 'names'):
    assert "outputs['%s']" % output in default
  np.save(str(tmp_path / 'images.npy'), IMAGES)
  _saved_model_cli('run', '--dir', exported.plain, '--tag_set', 'serve',
                   '--signature_def', 'serving_default', '--inputs',
                   'images=%s' % (tmp_path / 'images.npy'), '--outdir',
                   tmp_path / 'out')
  probabilities = np.load(str(tmp_path / 'out' / 'probabilities.npy'))
  np.testing.assert_allclose(
      probabilities, exported.loaded[0]['serving_default']['probabilities'][
          :4], atol=SAME_TOLERANCE)
  for i, png in enumerate(exported.pngs):
    assert np.abs(probabilities[i] - exported.printed[png]).max() <= (
        PRINTED_TOLERANCE)
  classes = np.load(str(tmp_path / 'out' / 'classes.npy'))
  assert (classes == probabilities.argmax(axis=1)).all()


def _variables(export_dir):
  return fakes.read_checkpoint(os.path.join(export_dir, 'variables',
                                            'variables'))


def test_the_export_holds_the_moving_averages_or_the_named_checkpoint(
    exported, readonly_data_dir, trained_two_steps, tmp_path):
  checkpoint = fakes.read_checkpoint(os.path.join(trained_two_steps,
                                                  'model.ckpt-2'))
  name = 'conv1/weights'
  assert np.abs(checkpoint[name] - checkpoint[name + fakes.SHADOW]).max() > 0
  np.testing.assert_array_equal(_variables(exported.plain)[name],
                                checkpoint[name + fakes.SHADOW])
  raw = str(tmp_path / 'raw')
  named = str(tmp_path / 'named')
  common = ['cifar10_export.py', '--data_dir', readonly_data_dir]
  first = os.path.join(trained_two_steps, 'model.ckpt-0')
  results = run_scripts([
      common + ['--checkpoint_dir', trained_two_steps, '--export_dir', raw,
                '--moving_average=false'],
      common + ['--checkpoint_path', first, '--export_dir', named]])
  for result in results:
    assert result.returncode == 0, result.stderr
  np.testing.assert_array_equal(_variables(raw)[name], checkpoint[name])
  assert '%s (global step 0)' % first in results[1].stdout
  np.testing.assert_array_equal(
      _variables(named)[name],
      fakes.read_checkpoint(first)[name + fakes.SHADOW])


def test_overwrite_replaces_an_earlier_export_only(
    exported, readonly_data_dir, trained_two_steps, tmp_path):
  target = tmp_path / 'models' / '1'
  common = ['cifar10_export.py', '--data_dir', readonly_data_dir,
            '--export_dir', str(target)]
  run_script(*common + ['--checkpoint_path', os.path.join(
      trained_two_steps, 'model.ckpt-0')])
  before = snapshot(tmp_path / 'models')
  # Refused without --overwrite, and with it when the new one fails: the
  # earlier export is left as it was.
  refused = run_scripts([
      common + ['--checkpoint_dir', trained_two_steps],
      common + ['--checkpoint_dir', trained_two_steps, '--overwrite',
                '--model=resnet20']])
  one_error_line(refused[0], 'cifar10_export.py', '--export_dir=%s' % target,
                 'already exists', '--overwrite')
  one_error_line(refused[1], 'cifar10_export.py',
                 'holds a --model=tutorial network, not this --model=resnet20')
  assert snapshot(tmp_path / 'models') == before
  run_script(*common + ['--checkpoint_dir', trained_two_steps, '--overwrite'])
  assert os.listdir(str(tmp_path / 'models')) == ['1']
  np.testing.assert_array_equal(_variables(str(target))['conv1/weights'],
                                _variables(exported.plain)['conv1/weights'])


def test_bad_input_is_one_line_and_leaves_nothing(readonly_data_dir,
                                                  trained_two_steps, tmp_path):
  empty = tmp_path / 'empty'
  empty.mkdir()
  not_a_dir = tmp_path / 'file'
  not_a_dir.write_text(u'x')
  other = tmp_path / 'other'
  other.mkdir()
  (other / 'notes.txt').write_text(u'mine')
  out = tmp_path / 'out' / 'deeper' / '1'
  before = snapshot(tmp_path)
  common = ['cifar10_export.py', '--data_dir', readonly_data_dir]
  cases = [
      (['--checkpoint_dir', str(empty), '--export_dir', str(out)],
       ['No checkpoint file found in --checkpoint_dir=%s' % empty]),
      (['--checkpoint_path', str(empty / 'model.ckpt-9'), '--export_dir',
        str(out)], ['model.ckpt-9', 'unreadable']),
      (['--checkpoint_dir', trained_two_steps, '--model=resnet20',
        '--export_dir', str(out)],
       ['holds a --model=tutorial network, not this --model=resnet20 one']),
      (['--checkpoint_dir', trained_two_steps, '--export_dir',
        str(not_a_dir / '1')], ['--export_dir=%s' % (not_a_dir / '1'),
                                'cannot write in']),
      (['--checkpoint_dir', trained_two_steps, '--export_dir', str(other),
        '--overwrite'], ['holds no saved_model.pb', 'earlier export only']),
  ]
  results = run_scripts([common + args for args, _ in cases])
  for (args, words), result in zip(cases, results):
    one_error_line(result, 'cifar10_export.py', *words, status=1)
  assert snapshot(tmp_path) == before


def test_an_unwritable_parent_is_one_line(readonly_data_dir,
                                          trained_two_steps, tmp_path):
  parent = tmp_path / 'locked'
  parent.mkdir()
  os.chmod(str(parent), 0o555)
  try:
    result = run_unprivileged(
        tmp_path, 'cifar10_export.py', '--data_dir', readonly_data_dir,
        '--checkpoint_dir', trained_two_steps, '--export_dir',
        parent / 'models' / '1')
  finally:
    os.chmod(str(parent), 0o755)
  one_error_line(result, 'cifar10_export.py', 'cannot create %s' % (
      parent / 'models'), 'Permission denied', status=1)
  assert os.listdir(str(parent)) == []


def test_a_failed_save_leaves_nothing_and_keeps_the_earlier(tmp_path):
  """The library's write step, with a save that fails half-way (as a full
  disk or Ctrl-C would)."""
  def failing(path):
    os.makedirs(os.path.join(path, 'variables'))
    open(os.path.join(path, 'saved_model.pb'), 'w').close()
    raise KeyboardInterrupt
  target = str(tmp_path / 'a' / 'b' / '1')
  with pytest.raises(KeyboardInterrupt):
    exporting._write(target, failing)
  assert os.listdir(str(tmp_path)) == []
  earlier = tmp_path / 'models' / '1'
  earlier.mkdir(parents=True)
  (earlier / 'saved_model.pb').write_text(u'earlier')
  before = snapshot(tmp_path)
  with pytest.raises(KeyboardInterrupt):
    exporting._write(str(earlier), failing)
  assert snapshot(tmp_path) == before


def test_a_tf115_export_loads_on_tf2(readonly_data_dir, trained_two_steps,
                                     exported, tmp_path):
  exporter, why = interpreter('tf1.15', tf.__version__)
  loader, why_not = interpreter('tf2', tf.__version__)
  if not exporter or not loader:
    pytest.skip(why or why_not)
  target = tmp_path / 'tf115' / '1'
  env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
  result = subprocess.run(
      [exporter, os.path.join(REPO, 'cifar10_export.py'), '--data_dir',
       readonly_data_dir, '--checkpoint_dir', trained_two_steps,
       '--export_dir', str(target)], cwd=REPO, env=env,
      stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      universal_newlines=True, timeout=240)
  assert result.returncode == 0, result.stdout + result.stderr
  loaded, out = load_elsewhere(loader, tmp_path, [target], IMAGES,
                               exported.pngs)
  assert 'loaded with TensorFlow 2.' in out
  ours = exported.loaded[0]
  for signature in ('serving_default', 'serving_bytes'):
    np.testing.assert_allclose(loaded[0][signature]['probabilities'],
                               ours[signature]['probabilities'][:4],
                               atol=SAME_TOLERANCE)
