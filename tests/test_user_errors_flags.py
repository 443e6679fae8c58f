"""Every number a script takes, at its extremes; and what is not a flag.

One table, read from the scripts' own --help, sweeps every integer and
float flag of every script through the values that used to end in a
traceback far from the flag (an epoch count whose steps overflow int64, a
timeout past what Python's clocks hold): each is refused in one line with
exit status 2, or taken. A flag added later is in the table without a new
test, and must have an upper bound. Then the flags whose bad values only
TensorFlow noticed (NaN floats, a --batch_size past int32 or memory or the
data) and a --data_dir that cannot be written.

Each run of the sweep stops before any work: after the flag it is given, a
stray positional argument is refused (cifar10_classify.py, which takes
images, finds no checkpoint instead), so a value that is taken costs nothing.
"""
import os
import re
import subprocess

import pytest

import fakes
from conftest import one_error_line, run_script, run_scripts, snapshot

TRAIN_EXAMPLES = 300   # conftest's data set: 5 files of 60
SCRIPTS = ['cifar10_train.py', 'cifar10_multi_gpu_train.py',
           'cifar10_dist_train.py', 'cifar10_eval.py', 'cifar10_classify.py',
           'cifar10_export.py']
# 2^63 and 2^64 are just past int64 and uint64.
EXTREMES = ['0', '-1', 'nan', 'inf', '1e300', str(2 ** 63), str(2 ** 64)]
# Never a meaningful value of any flag here.
MUST_REFUSE = {'nan', 'inf', '1e300', str(2 ** 63), str(2 ** 64)}
# absl's line giving a numeric flag's type and bounds.
NUMERIC = re.compile(r'^\s+\((?:an? )?(?:non-negative |positive )?'
                     r'(integer|number)\b(.*)\)$', re.M)


def _numeric_flags(helps):
  """[(script, flag, 'integer'|'number', bounds text)], each flag once."""
  table, seen = [], set()
  for script, text in zip(SCRIPTS, helps):
    for entry in re.split(r'\n  --(?:\[no\])?', '\n' + text)[1:]:
      name = entry.split(':')[0]
      match = NUMERIC.search(entry)
      if match and name not in seen:
        seen.add(name)
        table.append((script, name, match.group(1), match.group(2)))
  return table


def _sentinel_line(script, line):
  """Whether line is the sentinel's refusal: the flag's value was taken."""
  if script == 'cifar10_classify.py':
    return 'No checkpoint file found' in line
  return "unexpected argument 'stop-here'" in line


def test_every_numeric_flag_at_its_extremes(tmp_path):
  helps = run_scripts([[script, '--help'] for script in SCRIPTS])
  table = _numeric_flags([result.stdout for result in helps])
  names = [name for _, name, _, _ in table]
  # The table finds what it should (and so finds flags added later).
  for name in ['max_steps', 'num_epochs_per_decay', 'restart_epochs',
               'input_timeout_secs', 'eval_interval_secs', 'top_k',
               'worker_timeout_secs', 'num_gpus', 'learning_rate', 'seed']:
    assert name in names, names
  for script, name, kind, bounds in table:
    assert re.search(r'in the range \[.*, .*\]|<= ', bounds), (
        '--%s of %s has no upper bound: %r' % (name, script, bounds))
  missing = str(tmp_path / 'no_checkpoints')
  cases = [(script, name, value) for script, name, _, _ in table
           for value in EXTREMES]
  results = run_scripts(
      [[script, '--%s=%s' % (name, value), '--checkpoint_dir=' + missing,
        'stop-here'] if script == 'cifar10_classify.py' else
       [script, '--%s=%s' % (name, value), 'stop-here']
       for script, name, value in cases])
  for (script, name, value), result in zip(cases, results):
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(script + ': error: '), (
        script, name, value, result.stderr)
    line = lines[0]
    if _sentinel_line(script, line):
      assert value not in MUST_REFUSE, (script, name, value, line)
      continue
    assert result.returncode == 2, (script, name, value, result.stderr)
    assert '--%s' % name in line, line
  assert not os.path.exists(missing)


def test_a_stray_argument_is_refused_in_one_line(tmp_path):
  """`max_steps=5` without its dashes used to be ignored: training went on
  toward a million steps, and `run_once` made an evaluator watch forever."""
  data = str(tmp_path / 'data')
  for script, args in [
      ('cifar10_train.py', ['--train_dir', str(tmp_path / 't'), 'max_steps=5']),
      ('cifar10_multi_gpu_train.py', ['--train_dir', str(tmp_path / 't'),
                                      'max_steps=5']),
      ('cifar10_eval.py', ['--eval_dir', str(tmp_path / 'e'), 'run_once']),
      ('cifar10_dist_train.py', ['--train_dir', str(tmp_path / 't'), 'x']),
      ('cifar10_export.py', ['--export_dir', str(tmp_path / 'x' / '1'),
                             'latest']),
  ]:
    result = run_script(script, '--data_dir', data, *args, check=False,
                        timeout=60)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert lines == ['%s: error: unexpected argument %r: this script takes '
                     'flags only, written --name=value (see --help)'
                     % (script, args[-1])], result.stderr
  assert os.listdir(str(tmp_path)) == []


def test_a_missing_flagfile_is_named_in_one_line(tmp_path):
  path = str(tmp_path / 'absent.cfg')
  result = run_script('cifar10_train.py', '--flagfile=' + path, check=False)
  assert result.returncode == 2
  assert result.stderr.splitlines() == [
      'cifar10_train.py: error: --flagfile: cannot open it: %s'
      % result.stderr.split('cannot open it: ', 1)[1].strip()]
  assert path in result.stderr and 'ERROR::' not in result.stderr


def test_the_largest_values_taken_still_train(tmp_path):
  """The bounds are where the values stop working, not below: at them a
  trainer runs (or, with the largest learning rate, diverges in one line)."""
  data = str(tmp_path / 'data')
  fakes.write_dataset(data)
  interval = str(2 ** 62)
  result = run_script(
      'cifar10_train.py', '--data_dir', data, '--train_dir',
      str(tmp_path / 'a'), '--max_steps', '3', '--batch_size', '1',
      '--min_fraction_of_examples_in_queue', '0.05', '--log_frequency',
      interval, '--save_checkpoint_steps', interval, '--save_summaries_steps',
      interval, '--num_epochs_per_decay', '1e9', '--input_timeout_secs',
      str(366 * 24 * 3600), '--seed', str(2 ** 63 - 1), timeout=180)
  assert 'Done at step 3' in result.stdout
  # (TensorFlow 1.15 may log its CPU notes there; no error, no traceback.)
  assert 'Traceback' not in result.stderr
  assert 'cifar10_train.py: error' not in result.stderr
  result = run_script(
      'cifar10_train.py', '--data_dir', data, '--train_dir',
      str(tmp_path / 'b'), '--max_steps', '3', '--batch_size', '1',
      '--min_fraction_of_examples_in_queue', '0.05', '--lr_schedule',
      'cosine_restarts', '--restart_epochs', '1e9', '--learning_rate', '1e6',
      check=False, timeout=180)
  # TensorFlow 1.15's C++ start-up notes may come first in a forked run.
  lines = [l for l in result.stderr.splitlines()
           if not re.match(r'^\d{4}-\d\d-\d\d [\d:.]+: [IWE] tensorflow/', l)]
  # Three steps of batch 1 at that rate diverge, or (the data and the
  # initial weights permitting) end before they do: either way no traceback.
  if result.returncode == 0:
    assert 'Done at step 3' in result.stdout and not lines, result.stderr
  else:
    assert result.returncode == 1
    assert len(lines) == 1 and 'loss is NaN at step' in lines[0], (
        result.stderr)


# --- Float flags: NaN and infinities, for every float flag of every script.

def _float_flag_table(helps):
  """(script, flag) of every float flag the scripts' --help texts list, once.

  absl says "(a ... number)" or "(number ...)" of a float flag.
  """
  table, seen = [], set()
  for script, text in zip(SCRIPTS, helps):
    entries = re.split(r'\n  --(?:\[no\])?', '\n' + text)
    for entry in entries[1:]:
      name = entry.split(':')[0]
      if re.search(r'\((?:an? [\w -]*)?number', entry) and name not in seen:
        seen.add(name)
        table.append((script, name))
  return table


def test_every_float_flag_refuses_nan_and_infinities():
  helps = run_scripts([[script, '--help'] for script in SCRIPTS])
  table = _float_flag_table([result.stdout for result in helps])
  names = [name for _, name in table]
  # The enumeration finds what it should (and so would find new ones).
  for name in ['learning_rate', 'momentum', 'dropout_keep_prob',
               'learning_rate_decay_factor', 'num_epochs_per_decay',
               'min_fraction_of_examples_in_queue']:
    assert name in names
  bad_values = ['inf', '-inf']
  cases = [(script, name, value) for i, (script, name) in enumerate(table)
           for value in ['nan', bad_values[i % 2]]]
  results = run_scripts(
      [[script, '--%s=%s' % (name, value)] for script, name, value in cases])
  for (script, name, value), result in zip(cases, results):
    line = one_error_line(result, script, status=2)
    assert '--%s=%s' % (name, value) in line, line
    # absl's own bounds catch an infinity past them; the rest is ours.
    assert ('must be a finite number' in line or
            '%s is not ' % value in line), line


# --- --batch_size: int32, memory, the training examples.

@pytest.mark.parametrize('flag,value,bound', [
    ('batch_size', 1000000000, 536870911),          # queue sizes are int32
    ('intra_op_threads', 3000000000, 65536),        # ConfigProto's int32
    ('inter_op_threads', 3000000000, 65536),
])
def test_integer_past_what_tensorflow_takes_is_a_flag_error(tmp_path, flag,
                                                             value, bound):
  result = run_script('cifar10_train.py', '--%s=%d' % (flag, value),
                      '--data_dir', str(tmp_path / 'data'),
                      '--train_dir', str(tmp_path / 'train'), check=False)
  line = one_error_line(result, 'cifar10_train.py', status=2)
  assert '--%s=%d' % (flag, value) in line and str(bound) in line, line
  assert not os.listdir(str(tmp_path))


@pytest.mark.parametrize('script,batch_size,words', [
    ('cifar10_train.py', TRAIN_EXAMPLES + 1,
     ['larger than the %d training examples' % TRAIN_EXAMPLES]),
    ('cifar10_multi_gpu_train.py', 10 ** 8,
     ['larger than the %d training examples' % TRAIN_EXAMPLES]),
    ('cifar10_eval.py', 500000000, ['GiB, more than the', 'of memory']),
])
def test_batch_size_refused_before_the_graph(tmp_path, data_dir, script,
                                             batch_size, words):
  before = snapshot(data_dir)
  out_dir = tmp_path / 'out'
  out_dir.mkdir()
  args = ['--data_dir', data_dir, '--batch_size=%d' % batch_size]
  if script == 'cifar10_eval.py':
    args += ['--checkpoint_dir', str(out_dir), '--eval_dir', str(out_dir),
             '--run_once']
  else:
    args += ['--train_dir', str(out_dir)]
  line = one_error_line(run_script(script, *args, check=False), script,
                        status=1)
  assert '--batch_size=%d' % batch_size in line
  for word in words:
    assert word in line, line
  assert snapshot(data_dir) == before
  assert not os.listdir(str(out_dir))


def test_batch_size_of_all_training_examples_trains(tmp_path, data_dir):
  result = run_script('cifar10_train.py', '--data_dir', data_dir,
                      '--train_dir', str(tmp_path / 'train'),
                      '--batch_size=%d' % TRAIN_EXAMPLES, '--max_steps=1',
                      '--min_fraction_of_examples_in_queue=0.05')
  assert os.path.exists(str(tmp_path / 'train' / 'checkpoint')), result.stdout


# --- A --data_dir that cannot be written.

def _can_bind_mount_read_only(path):
  return subprocess.call(
      ['unshare', '-m', 'sh', '-c',
       'mount --bind -o ro "$0" "$0" && ! touch "$0/probe" 2>/dev/null',
       path], stderr=subprocess.DEVNULL) == 0


def test_read_only_data_dir_without_data(tmp_path):
  """A read-only bind mount (root ignores permission bits, not EROFS)."""
  data_dir = tmp_path / 'data'
  data_dir.mkdir()
  if not _can_bind_mount_read_only(str(data_dir)):
    pytest.skip('needs unshare -m and mount --bind (root)')
  script = os.path.join(os.path.dirname(os.path.dirname(
      os.path.abspath(__file__))), 'cifar10_train.py')
  result = subprocess.run(
      ['unshare', '-m', 'sh', '-c',
       'mount --bind -o ro "$1" "$1" && exec "$0" "$2" --data_dir "$1" '
       '--train_dir "$3" --data_url http://127.0.0.1:9/none.tar.gz',
       os.sys.executable, str(data_dir), script, str(tmp_path / 'train')],
      stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      universal_newlines=True, timeout=240)
  line = one_error_line(result, 'cifar10_train.py', status=1)
  assert '--data_dir=%s' % data_dir in line
  assert 'cannot be written' in line and 'by hand' in line
  assert 'another --data_dir' in line
  assert not os.listdir(str(data_dir))
  assert not (tmp_path / 'train').exists()
