"""cifar10_eval.py --per_class: each class's precision @ 1 and the confusion
matrix, printed and in TensorBoard, against a numpy oracle.

The checkpoint is softmax regression with weights drawn here (its moving
averages; the raw weights are zeros), so the oracle is the pixels cropped
and standardized in numpy times those weights. The test labels leave one
class without examples among the 50 evaluated. TensorBoard's own event
reader reads the summaries. Without the flag the output and the summaries
are the tutorial's.
"""
import os
import re
import shutil

import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator

import fakes
from conftest import numpy_eval_images, run_script
from cifar10lib.base.compat import tf

NAMES = fakes.CIFAR10.label_names['batches.meta.txt']
EXAMPLES = 50
ABSENT = 9          # no test example of this class among the first 50
PIXELS = 320        # the image's side: 10 cells of 32 pixels
LOAD_ALL = {kind: 0 for kind in event_accumulator.DEFAULT_SIZE_GUIDANCE}
PRECISION_LINE = re.compile(
    r'^\S+ \S+: precision @ 1 = (\d\.\d{3}) \((\d+)/(\d+) correct, global '
    r'step 7, model\.ckpt-7\)$')


@pytest.fixture(scope='module')
def case(tmp_path_factory):
  base = tmp_path_factory.mktemp('per_class')
  rng = np.random.RandomState(11)
  labels = np.concatenate([rng.randint(0, ABSENT, EXAMPLES),
                           np.full(10, ABSENT)])
  test = fakes.write_dataset(base / 'data', train_per_file=4,
                             test_records=len(labels),
                             test_labels=labels)['test']
  weights = rng.normal(0.0, 0.05, [24 * 24 * 3, 10]).astype(np.float32)
  biases = np.linspace(0.5, -0.5, 10).astype(np.float32)
  checkpoint = fakes.write_checkpoint(base / 'train' / 'model.ckpt-7', {
      'softmax_linear/weights': np.zeros_like(weights),
      'softmax_linear/biases': np.zeros_like(biases),
      'softmax_linear/weights' + fakes.SHADOW: weights,
      'softmax_linear/biases' + fakes.SHADOW: biases,
      'global_step': np.int64(7)})
  # The oracle: the logits in float64, their top two far enough apart
  # that float32 cannot swap them.
  flat = numpy_eval_images(test.pixels[:EXAMPLES]).reshape(EXAMPLES, -1)
  logits = flat.dot(weights.astype(np.float64)) + biases
  top = np.sort(logits, axis=1)
  assert (top[:, -1] - top[:, -2]).min() > 1e-3
  matrix = np.zeros([10, 10], np.int64)
  for label, predicted in zip(test.labels[:EXAMPLES], logits.argmax(axis=1)):
    matrix[label, predicted] += 1
  assert len(set(np.nonzero(matrix)[1])) > 3    # a spread of predictions
  common = ['cifar10_eval.py', '--data_dir', str(base / 'data'),
            '--checkpoint_dir', str(base / 'train'), '--model=softmax',
            '--run_once', '--num_examples=%d' % EXAMPLES, '--batch_size=16']
  runs = {}
  for name, extra in (('plain', []), ('per_class', ['--per_class'])):
    runs[name] = run_script(*common + ['--eval_dir', str(base / name)] +
                            extra).stdout
  runs['ensemble'] = run_script(*common + [
      '--eval_dir', str(base / 'ensemble'), '--per_class',
      '--checkpoint_paths=%s,%s' % (checkpoint, checkpoint)]).stdout
  return base, matrix, runs


def _oracle_lines(matrix):
  """The lines --per_class should print, written from its description."""
  lines = []
  for c, name in enumerate(NAMES):
    head = '  %-12s' % (name + ':')
    total = matrix[c].sum()
    if not total:
      lines.append(head + 'no examples')
      continue
    line = head + 'precision @ 1 = %.3f (%d/%d correct)' % (
        matrix[c, c] / total, matrix[c, c], total)
    wrong = [(matrix[c, o], -o) for o in range(10) if o != c and matrix[c, o]]
    if wrong:
      count, other = max(wrong)
      line += '; most often taken for %s (%d)' % (NAMES[-other], count)
    lines.append(line)
  return lines


def test_per_class_lines_follow_the_tutorials_line(case):
  _, matrix, runs = case
  lines = runs['per_class'].strip().splitlines()
  match = PRECISION_LINE.match(lines[-11])
  assert match, runs['per_class']
  assert int(match.group(2)) == np.trace(matrix)
  assert int(match.group(3)) == EXAMPLES
  assert lines[-10:] == _oracle_lines(matrix)
  assert lines[-10 + ABSENT] == '  truck:      no examples'
  # The tutorial's lines are as without the flag, which adds nothing else.
  plain = runs['plain'].strip().splitlines()
  assert [re.sub(r'^\S+ \S+: ', '', l) for l in plain] == [
      re.sub(r'^\S+ \S+: ', '', l) for l in lines[:-10]]
  assert 'per class' not in runs['plain'] and 'taken for' not in (
      runs['plain'])


def test_an_ensemble_reports_its_classes_too(case):
  _, matrix, runs = case
  lines = runs['ensemble'].strip().splitlines()
  assert 'ensemble of 2 checkpoints: precision @ 1 = %.3f (%d/%d correct)' % (
      np.trace(matrix) / EXAMPLES, np.trace(matrix), EXAMPLES) in lines[-11]
  assert lines[-10:] == _oracle_lines(matrix)


def _events(path):
  accumulator = event_accumulator.EventAccumulator(str(path),
                                                   size_guidance=LOAD_ALL)
  accumulator.Reload()
  return accumulator


def test_tensorboard_has_each_class_and_the_confusion_matrix(case):
  base, matrix, _ = case
  events = _events(base / 'per_class')
  plain = _events(base / 'plain')
  tags = events.Tags()
  per_class = sorted(t for t in tags['scalars'] if 'per class' in t)
  assert per_class == ['Precision @ 1 per class/%d %s' % (c, name)
                       for c, name in enumerate(NAMES) if c != ABSENT]
  for c, name in enumerate(NAMES):
    if c == ABSENT:
      continue
    (event,) = events.Scalars('Precision @ 1 per class/%d %s' % (c, name))
    assert event.step == 7
    assert event.value == pytest.approx(matrix[c, c] / matrix[c].sum(),
                                        abs=1e-6)
  (precision,) = events.Scalars('Precision @ 1')
  assert precision.value == pytest.approx(np.trace(matrix) / EXAMPLES,
                                          abs=1e-6)
  # Without the flag: the tutorial's summaries, exactly those.
  assert sorted(plain.Tags()['scalars']) == sorted(
      set(tags['scalars']) - set(per_class))
  assert sorted(plain.Tags()['images']) == sorted(
      set(tags['images']) - {'Confusion matrix'})
  (image,) = events.Images('Confusion matrix')
  assert (image.step, image.width, image.height) == (7, PIXELS, PIXELS)
  with tf.Graph().as_default(), tf.Session() as sess:
    pixels = sess.run(tf.image.decode_png(image.encoded_image_string))
  assert pixels.shape == (PIXELS, PIXELS, 1)
  cells = pixels[16::32, 16::32, 0]   # each cell's centre
  shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
  np.testing.assert_array_equal(cells, np.round(255 * shares))
  assert (cells[ABSENT] == 0).all()
  # Each cell is one flat square.
  assert (pixels[:, :, 0] == np.kron(cells, np.ones([32, 32]))).all()


def test_without_a_names_file_it_names_the_cifar10_classes(case, tmp_path):
  """As the classifier does, with its note on stderr."""
  base, matrix, _ = case
  data = tmp_path / 'data'
  shutil.copytree(str(base / 'data'), str(data))
  os.remove(str(data / 'cifar-10-batches-bin' / 'batches.meta.txt'))
  result = run_script(
      'cifar10_eval.py', '--data_dir', str(data), '--checkpoint_dir',
      str(base / 'train'), '--model=softmax', '--run_once',
      '--num_examples=%d' % EXAMPLES, '--eval_dir', str(tmp_path / 'eval'),
      '--per_class')
  assert 'using the CIFAR-10 class names' in result.stderr
  assert result.stdout.strip().splitlines()[-10:] == _oracle_lines(matrix)
