"""bench/time_to_accuracy.py and bench/gpu_check.sh on tiny data.

Two tiny recipes are trained, both before any evaluation, each kept
checkpoint scored on the test file of two data directories, and the table
parsed; a second call reuses the run
and its kept scores; the plot is a valid PNG where matplotlib is installed,
and one line saying it is not otherwise.
"""
import json
import os
import re
import struct
import subprocess
import sys

import fakes
from conftest import REPO

TIMEOUT = 600   # a bound against hangs on a loaded machine, not a timing
ROW = re.compile(r'^\| tiny \| (\d+) \| (\d+\.\d\d) \| (\d+) \| (\d+\.\d) \| '
                 r'(\d\.\d{4}) \| (\d\.\d{4}) \|$', re.M)


def _has_matplotlib():
  try:
    import matplotlib  # noqa: F401
    return True
  except ImportError:
    return False


def test_table_and_plot_of_a_tiny_recipe(tmp_path):
  data_dir, exact_dir = str(tmp_path / 'data'), str(tmp_path / 'exact')
  fakes.write_dataset(data_dir, train_per_file=8, test_records=20)
  fakes.write_dataset(exact_dir, train_per_file=8, test_records=7, seed=1)
  out_dir, png = str(tmp_path / 'out'), str(tmp_path / 'plot.png')
  cmd = [sys.executable, os.path.join(REPO, 'bench', 'time_to_accuracy.py'),
         '--data_dir', data_dir, '--exact_dir', exact_dir,
         '--out_dir', out_dir, '--checkpoints_per_epoch=2.5',
         '--recipe', 'tiny=--batch_size=8 --epochs=1 '
         '--min_fraction_of_examples_in_queue=0.1', '--plot', png]
  other = ['--recipe', 'other=--batch_size=8 --epochs=0.4 '
           '--min_fraction_of_examples_in_queue=0.1']
  result = subprocess.run(cmd + other, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True,
                          timeout=TIMEOUT, cwd=REPO)
  assert result.returncode == 0, result.stderr
  # Both recipes train before the first evaluation takes the CPU.
  out = result.stdout
  assert out.index('other: ') < out.index('precision @ 1 = '), out
  assert re.search(r'^\| other \| 2 \| 0\.40 \|', out, re.M), out
  rows = ROW.findall(result.stdout)
  # 40 records of batch 8: 5 steps, a checkpoint every 2 and at the end.
  assert [int(r[0]) for r in rows] == [2, 4, 5], result.stdout
  assert [r[1] for r in rows] == ['0.40', '0.80', '1.00']
  for _, _, seconds, rate, test, exact in rows:
    assert int(seconds) >= 0 and float(rate) > 0
    # Precisions of 20 and 7 test images.
    assert round(float(test) * 20, 3) == int(round(float(test) * 20))
    assert round(float(exact) * 7, 3) == int(round(float(exact) * 7))
  assert re.search(r'^\| tiny \| trainer exit \| \| \d+ \|', result.stdout,
                   re.M)
  if _has_matplotlib():
    with open(png, 'rb') as f:
      header = f.read(24)
    assert header[:8] == b'\x89PNG\r\n\x1a\n' and header[12:16] == b'IHDR'
    width, height = struct.unpack('>II', header[16:24])
    assert width > 100 and height > 100
  else:
    assert 'No plot: matplotlib is not installed' in result.stdout
    assert not os.path.exists(png)
  # A second call reuses the finished run rather than training again, and
  # the kept scores rather than scoring again: a score planted in the file
  # comes back as it is.
  scores_file = os.path.join(out_dir, 'tiny', 'scores_data_tta0.json')
  with open(scores_file) as f:
    scores = json.load(f)
  assert sorted(scores) == ['model.ckpt-2', 'model.ckpt-4', 'model.ckpt-5']
  scores['model.ckpt-2'] = 0.123456
  with open(scores_file, 'w') as f:
    json.dump(scores, f)
  again = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, timeout=TIMEOUT, cwd=REPO)
  assert 'reusing the finished run' in again.stdout
  assert ROW.findall(again.stdout) == [rows[0][:4] + ('0.1235',) + rows[0][5:]
                                       ] + rows[1:]


def test_gpu_check_on_a_cpu_says_no_gpu_and_exits_0(tmp_path):
  data_dir = str(tmp_path / 'data')
  fakes.write_dataset(data_dir, train_per_file=8, test_records=10)
  result = subprocess.run(
      ['bash', os.path.join(REPO, 'bench', 'gpu_check.sh'), '--tiny',
       data_dir, str(tmp_path / 'out')],
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
      timeout=TIMEOUT, cwd=REPO,
      env=dict(os.environ, CUDA_VISIBLE_DEVICES=''))
  assert result.returncode == 0, result.stderr
  assert re.search(r'^\| cpu float32 \| \d+ \| \d+\.\d \|', result.stdout,
                   re.M), result.stdout
  assert 'No GPU found' in result.stdout
