"""The watching evaluator and an --eval_dir that already holds scores.

A step that `cifar10_eval.py --run_once` (or an earlier watcher) already
scored into --eval_dir is not scored again by a watcher, which would add a
second Precision point at that step to TensorBoard; a newer checkpoint is.
"""
import os
import signal

import fakes
from conftest import Proc, run_script


def _precision_steps(eval_dir):
  return sorted(step for step, _ in
                fakes.scalar_events(eval_dir).get('Precision @ 1', []))


def test_watcher_skips_a_step_already_scored(tmp_path):
  data_dir = str(tmp_path / 'data')
  fakes.write_dataset(data_dir, train_per_file=10, test_records=40)
  train_dir = tmp_path / 'train'
  train_dir.mkdir()
  fakes.write_model_checkpoint(str(train_dir / 'model.ckpt-7'), step=7)
  eval_dir = str(tmp_path / 'eval')
  common = ['--data_dir', data_dir, '--checkpoint_dir', str(train_dir),
            '--eval_dir', eval_dir, '--batch_size', '8']
  run_script('cifar10_eval.py', '--run_once', *common)
  assert _precision_steps(eval_dir) == [7]

  watcher = Proc('cifar10_eval.py', '--eval_interval_secs', '1', *common)
  try:
    watcher.wait_for(
        lambda: any('already scored' in l for l in watcher.lines),
        'the already-scored line')
    fakes.write_model_checkpoint(str(train_dir / 'model.ckpt-9'), step=9)
    watcher.wait_for(
        lambda: any('global step 9' in l for l in watcher.lines),
        'the evaluation of step 9')
    watcher.popen.send_signal(signal.SIGINT)
    assert watcher.finish() == 0, watcher.stderr
  finally:
    watcher.kill()
  assert ('model.ckpt-7 is already scored in --eval_dir=%s (precision @ 1 = '
          % eval_dir) in [l for l in watcher.lines
                          if not l.startswith('Options: ')][0], watcher.lines
  assert [l for l in watcher.lines if 'precision @ 1 = ' in l and
          'already' not in l][0].endswith('global step 9, model.ckpt-9)')
  assert _precision_steps(eval_dir) == [7, 9]
  assert os.path.isdir(eval_dir)
