"""The data options beyond the tutorial: the validation split, CIFAR-100 and
the shuffling queue's fill (--min_fraction_of_examples_in_queue)."""
import os

import numpy as np
import pytest

from conftest import make_records, run_script, write_dataset
import cifar10
from cifar10 import tf
import cifar10_input

PER_FILE = 60          # write_dataset's records per training file
HELD_OUT = 90          # all of data_batch_5 and the last 30 of data_batch_4
HELD_OUT_LABEL = 9


def _pull(tensors, batches):
  """Runs the queue pipeline behind tensors; returns up to `batches` results.

  Stops early at the end of an epoch (num_epochs=1 pipelines).
  """
  results = []
  with tf.Session() as sess:
    sess.run([tf.global_variables_initializer(),
              tf.local_variables_initializer()])
    coord = tf.train.Coordinator()
    threads = tf.train.start_queue_runners(sess=sess, coord=coord)
    try:
      for _ in range(batches):
        results.append(sess.run(tensors))
    except tf.errors.OutOfRangeError:
      pass
    finally:
      coord.request_stop()
      coord.join(threads, stop_grace_period_secs=10)
  return results


def _split_dataset(data_dir):
  """Training files whose last HELD_OUT records, and only they, have label 9."""
  rng = np.random.RandomState(3)
  batches = os.path.join(data_dir, cifar10_input.BATCHES_DIR)
  os.makedirs(batches)
  labels = rng.randint(0, HELD_OUT_LABEL, size=5 * PER_FILE)
  labels[-HELD_OUT:] = HELD_OUT_LABEL
  pixels = []
  for i, name in enumerate(cifar10_input.TRAIN_FILES):
    data, file_pixels = make_records(labels[i * PER_FILE:(i + 1) * PER_FILE],
                                     seed=i)
    with open(os.path.join(batches, name), 'wb') as f:
      f.write(data)
    pixels.append(file_pixels)
  return labels, np.concatenate(pixels)


def _eval_image(pixels):
  """What inputs() should make of a [32, 32, 3] image: centre crop, standardized."""
  crop = pixels[4:28, 4:28].astype(np.float64)
  return (crop - crop.mean()) / max(crop.std(), 1.0 / np.sqrt(crop.size))


def test_record_ranges_cut_the_concatenated_files(data_dir):
  files = cifar10_input.data_files(data_dir, eval_data=False)
  ranges, count = cifar10_input.record_ranges(files)
  assert ranges == [(f, 0, PER_FILE) for f in files] and count == 300
  ranges, count = cifar10_input.record_ranges(files, (0, 210))
  assert ranges == [(f, 0, PER_FILE) for f in files[:3]] + [(files[3], 0, 30)]
  assert count == 210
  ranges, count = cifar10_input.record_ranges(files, (210, 300))
  assert ranges == [(files[3], 30, 60), (files[4], 0, 60)] and count == 90
  ranges, count = cifar10_input.record_ranges(files, (55, 125))
  assert ranges == [(files[0], 55, 60), (files[1], 0, 60), (files[2], 0, 5)]
  assert count == 70


def test_validation_records_never_reach_the_training_queue(tmp_path):
  data_dir = str(tmp_path)
  _split_dataset(data_dir)
  with tf.Graph().as_default():
    images, labels = cifar10_input.distorted_inputs(
        data_dir, batch_size=50, min_fraction_of_examples_in_queue=0.5,
        records=(0, 5 * PER_FILE - HELD_OUT))
    # 20 batches: about five epochs of the 210 training records.
    seen = np.concatenate([l for l in _pull(labels, 20)])
  assert len(seen) == 1000
  assert HELD_OUT_LABEL not in seen
  assert set(seen) == set(range(HELD_OUT_LABEL))


def test_reads_wholly_held_out_leave_training_running(tmp_path):
  # One file of 1,100 records, the last 600 held out: after the first read
  # of RECORDS_PER_READ (512) every read of an epoch selects no record.
  assert cifar10_input.RECORDS_PER_READ == 512
  labels = np.random.RandomState(5).randint(0, HELD_OUT_LABEL, size=1100)
  labels[500:] = HELD_OUT_LABEL
  path = str(tmp_path / 'one.bin')
  with open(path, 'wb') as f:
    f.write(make_records(labels)[0])
  with tf.Graph().as_default():
    _, batch_labels = cifar10_input.distorted_inputs(
        None, batch_size=100, filenames=[path], records=(0, 500),
        min_fraction_of_examples_in_queue=0.2)
    seen = np.concatenate(_pull(batch_labels, 15))
  assert len(seen) == 1500
  assert HELD_OUT_LABEL not in seen


def test_validation_inputs_are_exactly_the_held_out_records_in_order(tmp_path):
  data_dir = str(tmp_path)
  labels, pixels = _split_dataset(data_dir)
  start = 5 * PER_FILE - HELD_OUT
  with tf.Graph().as_default():
    batches = _pull(cifar10_input.inputs(False, data_dir, 32, num_epochs=1,
                                         records=(start, 5 * PER_FILE)), 100)
  images = np.concatenate([b[0] for b in batches])
  got = np.concatenate([b[1] for b in batches])
  assert [len(b[1]) for b in batches] == [32, 32, 26]
  np.testing.assert_array_equal(got, labels[start:])
  expected = np.stack([_eval_image(p) for p in pixels[start:]])
  np.testing.assert_allclose(images, expected, atol=1e-4)


def test_validation_examples_flag_splits_and_checks(data_dir):
  flag = cifar10.FLAGS['validation_examples']
  saved_dir = cifar10.FLAGS['data_dir'].value
  cifar10.FLAGS['data_dir'].value = data_dir
  try:
    flag.value = 50
    assert cifar10.data_split('train')[1:] == ((0, 250), 250)
    assert cifar10.data_split('train_eval')[1:] == ((0, 250), 250)
    assert cifar10.data_split('validation')[1:] == ((250, 300), 50)
    assert cifar10.data_split('test')[1:] == (None, 100)
    flag.value = 300
    with pytest.raises(cifar10.UserError, match=r'--validation_examples=300: '
                       r'must be less than the 300 training records'):
      cifar10.data_split('train')
    flag.value = 0
    with pytest.raises(cifar10.UserError, match='needs --validation_examples'):
      cifar10.data_split('validation')
  finally:
    flag.value = 0
    cifar10.FLAGS['data_dir'].value = saved_dir


def test_min_fraction_flag_sets_the_shuffling_queue_fill(data_dir):
  flag = cifar10.FLAGS['min_fraction_of_examples_in_queue']
  assert flag.default == 0.4
  files = cifar10_input.data_files(data_dir, eval_data=False)
  for fraction, expected in [(None, 120), (0.1, 30)]:
    if fraction is not None:
      flag.value = fraction
    try:
      with tf.Graph().as_default() as graph:
        cifar10.distorted_inputs(batch_size=10, filenames=files)
        queues = [op for op in graph.get_operations()
                  if op.type.startswith('RandomShuffleQueue')]
        assert len(queues) == 1
        assert queues[0].get_attr('min_after_dequeue') == expected
        assert queues[0].get_attr('capacity') == expected + 3 * 10
    finally:
      flag.value = flag.default


def _write_cifar100(data_dir, count=40, seed=0, bad=None):
  """cifar-100-binary/{train,test}.bin: coarse byte, fine byte, pixels.

  Returns (coarse, fine, pixels) of test.bin. bad=(byte, value) puts that
  value in record 3's coarse (0) or fine (1) label byte of test.bin.
  """
  rng = np.random.RandomState(seed)
  batches = os.path.join(data_dir, 'cifar-100-binary')
  os.makedirs(batches)
  out = None
  for name in ('train.bin', 'test.bin'):
    coarse = rng.randint(0, 20, size=count).astype(np.uint8)
    fine = rng.randint(0, 100, size=count).astype(np.uint8)
    pixels = rng.randint(0, 256, size=(count, 32, 32, 3)).astype(np.uint8)
    if bad is not None and name == 'test.bin':
      (coarse, fine)[bad[0]][3] = bad[1]
    records = np.concatenate([coarse[:, None], fine[:, None],
                              pixels.transpose(0, 3, 1, 2).reshape(count, -1)],
                             axis=1)
    with open(os.path.join(batches, name), 'wb') as f:
      f.write(records.astype(np.uint8).tobytes())
    out = coarse, fine, pixels
  return out


@pytest.mark.parametrize('ds,byte', [(cifar10_input.CIFAR100, 1),
                                     (cifar10_input.CIFAR100_COARSE, 0)])
def test_cifar100_records_parse_with_the_chosen_label_byte(tmp_path, ds, byte):
  data_dir = str(tmp_path)
  coarse, fine, pixels = _write_cifar100(data_dir)
  assert ds.record_bytes == 3074
  assert ds.num_classes == (100, 20)[1 - byte]
  assert cifar10_input.count_examples(
      cifar10_input.data_files(data_dir, True, ds), ds) == 40
  with tf.Graph().as_default():
    batches = _pull(cifar10_input.inputs(True, data_dir, 16, num_epochs=1,
                                         ds=ds), 10)
  labels = np.concatenate([b[1] for b in batches])
  np.testing.assert_array_equal(labels, (coarse, fine)[byte])
  images = np.concatenate([b[0] for b in batches])
  np.testing.assert_allclose(images[5], _eval_image(pixels[5]), atol=1e-4)


@pytest.mark.parametrize('byte,value,message', [
    (1, 100, 'record 3 has label 100, outside 0..99'),
    (0, 20, 'record 3 has label 20, outside 0..19')])
def test_cifar100_label_out_of_range_names_file_and_record(tmp_path, byte,
                                                           value, message):
  _write_cifar100(str(tmp_path), bad=(byte, value))
  path = str(tmp_path / 'cifar-100-binary' / 'test.bin')
  with pytest.raises(cifar10_input.DataError) as raised:
    cifar10_input.count_examples([path], cifar10_input.CIFAR100)
  assert str(raised.value) == '%s: %s' % (path, message)


def test_cifar100_source_is_the_official_one():
  assert cifar10_input.dataset('cifar100').url == (
      'https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz')
  assert cifar10_input.dataset('cifar100').md5 == (
      '03b5dce01913d631647c71ecec9e9cb8')
  assert cifar10_input.dataset('cifar100', 'coarse').num_classes == 20
  assert cifar10_input.dataset('cifar10') is cifar10_input.CIFAR10


def test_train_and_evaluate_cifar100_on_a_validation_split(tmp_path):
  data_dir, train_dir = str(tmp_path / 'data'), str(tmp_path / 'train')
  _write_cifar100(data_dir, count=100)
  common = ['--data_dir', data_dir, '--dataset=cifar100',
            '--cifar100_labels=coarse', '--validation_examples=30',
            '--batch_size=16']
  run_script('cifar10_train.py', '--train_dir', train_dir, '--max_steps=3',
             '--min_fraction_of_examples_in_queue=0.1', *common)
  reader = tf.train.NewCheckpointReader(tf.train.latest_checkpoint(train_dir))
  assert reader.get_variable_to_shape_map()['softmax_linear/biases'] == [20]
  result = run_script('cifar10_eval.py', '--checkpoint_dir', train_dir,
                      '--eval_dir', str(tmp_path / 'eval'), '--run_once',
                      '--eval_data=validation', *common)
  assert '/30 correct, global step 3' in result.stdout
  result = run_script('cifar10_eval.py', '--checkpoint_dir', train_dir,
                      '--eval_dir', str(tmp_path / 'eval'), '--run_once',
                      '--eval_data=validation', '--data_dir', data_dir,
                      '--dataset=cifar100', '--cifar100_labels=coarse',
                      check=False)
  assert result.returncode == 1
  assert result.stderr.strip().splitlines() == [
      'cifar10_eval.py: error: --eval_data=validation needs '
      '--validation_examples=N, the N that training held out']
