"""Which records the input pipeline reads: record ranges and the validation
split, and the data sets beyond CIFAR-10 (CIFAR-100 with either label).

Records are written by the tests (fakes.py) with labels that tell the
held-out ones apart, so every split can be checked record by record.
"""
import numpy as np
import pytest

from conftest import numpy_eval_images, run_pipeline, run_script
from cifar10lib.base.compat import tf
from cifar10lib.data import cifar10_input
from cifar10lib.training import cifar10
import fakes
from cifar10lib.base import errors
from cifar10lib.data import datasets

PER_FILE = 60          # write_dataset's records per training file
HELD_OUT = 90          # all of data_batch_5 and the last 30 of data_batch_4
HELD_OUT_LABEL = 9


def _split_dataset(data_dir):
  """Training files whose last HELD_OUT records, and only they, have label 9."""
  labels = np.random.RandomState(3).randint(0, HELD_OUT_LABEL,
                                            size=5 * PER_FILE)
  labels[-HELD_OUT:] = HELD_OUT_LABEL
  pixels = []
  for i, name in enumerate(fakes.CIFAR10.train_files):
    written = fakes.write_records(
        data_dir / fakes.CIFAR10.batches_dir / name,
        labels[i * PER_FILE:(i + 1) * PER_FILE], seed=i)
    pixels.append(written.pixels)
  return labels, np.concatenate(pixels)


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
  _split_dataset(tmp_path)
  with tf.Graph().as_default():
    images, labels = cifar10_input.distorted_inputs(
        data_dir, batch_size=50, min_fraction_of_examples_in_queue=0.5,
        records=(0, 5 * PER_FILE - HELD_OUT))
    # 20 batches: about five epochs of the 210 training records.
    seen = np.concatenate([l for l in run_pipeline(labels, 20)])
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
  fakes.write_records(path, labels)
  with tf.Graph().as_default():
    _, batch_labels = cifar10_input.distorted_inputs(
        None, batch_size=100, filenames=[path], records=(0, 500),
        min_fraction_of_examples_in_queue=0.2)
    seen = np.concatenate(run_pipeline(batch_labels, 15))
  assert len(seen) == 1500
  assert HELD_OUT_LABEL not in seen


def test_validation_inputs_are_exactly_the_held_out_records_in_order(tmp_path):
  data_dir = str(tmp_path)
  labels, pixels = _split_dataset(tmp_path)
  start = 5 * PER_FILE - HELD_OUT
  with tf.Graph().as_default():
    batches = run_pipeline(cifar10_input.inputs(
        False, data_dir, 32, num_epochs=1, records=(start, 5 * PER_FILE)), 100)
  images = np.concatenate([b[0] for b in batches])
  got = np.concatenate([b[1] for b in batches])
  assert [len(b[1]) for b in batches] == [32, 32, 26]
  np.testing.assert_array_equal(got, labels[start:])
  np.testing.assert_allclose(images, numpy_eval_images(pixels[start:]),
                             atol=1e-4)


def test_validation_examples_split_and_checks(data_dir):
  def split(name, held_out):
    return datasets.split(data_dir, name, datasets.CIFAR10, held_out)[2:]
  assert split('train', 50) == ((0, 250), 250)
  assert split('train_eval', 50) == ((0, 250), 250)
  assert split('validation', 50) == ((250, 300), 50)
  assert split('test', 50) == (None, 100)
  with pytest.raises(errors.UserError, match=r'--validation_examples=300: '
                     r'must be less than the 300 training records'):
    split('train', 300)
  with pytest.raises(errors.UserError, match='needs --validation_examples'):
    split('validation', 0)


# --- CIFAR-100 ------------------------------------------------------------


def _write_cifar100(data_dir, count=40, seed=0):
  """cifar-100-binary/{train,test}.bin of count records each.

  Returns test.bin's Records: labels [count, 2] (coarse, fine) and pixels.
  """
  return fakes.write_dataset(data_dir, train_per_file=count,
                             test_records=count, seed=seed,
                             fmt=fakes.CIFAR100)['test']


@pytest.mark.parametrize('ds,byte', [(datasets.CIFAR100, 1),
                                     (datasets.CIFAR100_COARSE, 0)])
def test_cifar100_records_parse_with_the_chosen_label_byte(tmp_path, ds, byte):
  data_dir = str(tmp_path)
  written = _write_cifar100(data_dir)
  assert ds.record_bytes == fakes.CIFAR100.record_bytes == 3074
  assert ds.num_classes == fakes.CIFAR100.label_classes[byte]
  assert cifar10_input.count_examples(
      cifar10_input.data_files(data_dir, True, ds), ds) == 40
  with tf.Graph().as_default():
    batches = run_pipeline(cifar10_input.inputs(True, data_dir, 16,
                                                num_epochs=1, ds=ds), 10)
  labels = np.concatenate([b[1] for b in batches])
  np.testing.assert_array_equal(labels, written.labels[:, byte])
  images = np.concatenate([b[0] for b in batches])
  np.testing.assert_allclose(images, numpy_eval_images(written.pixels),
                             atol=1e-4)


@pytest.mark.parametrize('byte,value,message', [
    (1, 100, 'record 3 has label 100, outside 0..99'),
    (0, 20, 'record 3 has label 20, outside 0..19')])
def test_cifar100_label_out_of_range_names_file_and_record(tmp_path, byte,
                                                           value, message):
  _write_cifar100(str(tmp_path))
  path = str(tmp_path / 'cifar-100-binary' / 'test.bin')
  fakes.break_file(path, 'label', record=3, label_byte=byte, label=value,
                   fmt=fakes.CIFAR100)
  with pytest.raises(cifar10_input.DataError) as raised:
    cifar10_input.count_examples([path], datasets.CIFAR100)
  assert str(raised.value) == '%s: %s' % (path, message)


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
