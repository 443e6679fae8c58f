"""--precision: its refusals and warnings, and float32 checkpoints in every precision.

bfloat16 runs only on TensorFlow 2.x (oneDNN's rewrite); TensorFlow 1.15
must refuse it. float16 needs a GPU, so on a machine without one only its
refusal and its graph (loss scaling, checkpoint contents) are tested here.
"""
import os

import pytest

from conftest import run_script

from cifar10lib.base.compat import tf
from cifar10lib.training import cifar10
from cifar10lib.training import precision

TF1 = tf.__version__.startswith('1.')
HAS_GPU = precision.gpu_count() > 0
needs_tf2 = pytest.mark.skipif(TF1, reason='bfloat16 needs TensorFlow 2.x')

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: %s
flags\t\t: fpu sse sse2 avx2 %s

processor\t: 1
model name\t: %s
flags\t\t: fpu sse sse2 avx2 %s
"""


def fake_cpuinfo(tmp_path, model, cpu_flags):
  path = tmp_path / ('cpuinfo-' + model.replace(' ', '_'))
  path.write_text(CPUINFO % (model, cpu_flags, model, cpu_flags))
  return {precision.CPUINFO_ENV: str(path)}


def train_args(data_dir, train_dir, steps, *extra):
  return ('--data_dir=%s' % data_dir, '--train_dir=%s' % train_dir,
          '--max_steps=%d' % steps, '--batch_size=16', '--log_frequency=1',
          '--min_fraction_of_examples_in_queue=0.01',
          '--save_checkpoint_steps=1000') + extra


def checkpoint_dtypes(train_dir):
  reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(train_dir))
  return reader.get_variable_to_dtype_map()


def warnings_in(stderr):
  return [l for l in stderr.splitlines() if 'warning: --precision' in l]


def test_cpu_info_reads_model_and_flags(tmp_path):
  env = fake_cpuinfo(tmp_path, 'Fake Xeon', 'avx512f avx512_bf16 amx_bf16')
  model, cpu_flags = precision.cpu_info(env[precision.CPUINFO_ENV])
  assert model == 'Fake Xeon'
  assert {'avx512f', 'avx512_bf16', 'amx_bf16'} <= cpu_flags
  assert 'avx512_fp16' not in cpu_flags
  assert precision.cpu_info(str(tmp_path / 'missing')) == ('unknown CPU',
                                                           set())


@needs_tf2
def test_check_warns_only_without_bfloat16_instructions(tmp_path):
  plain = fake_cpuinfo(tmp_path, 'Old CPU', 'avx512f')[precision.CPUINFO_ENV]
  amx = fake_cpuinfo(tmp_path, 'New CPU', 'amx_bf16')[precision.CPUINFO_ENV]
  (warning,) = precision.check('bfloat16', cpuinfo=plain)
  assert 'Old CPU' in warning and 'emulates' in warning
  assert precision.check('bfloat16', cpuinfo=amx) == []
  assert precision.check('float32', cpuinfo=plain) == []
  assert precision.check('float16', gpus=1) == []


def test_configure_sets_the_rewrite_and_nothing_by_default():
  rewrites = precision.configure(tf.ConfigProto(), 'float32') \
      .graph_options.rewrite_options
  assert rewrites == tf.ConfigProto().graph_options.rewrite_options
  rewrites = precision.configure(tf.ConfigProto(), 'float16') \
      .graph_options.rewrite_options
  assert rewrites.auto_mixed_precision == rewrites.ON
  if not TF1:
    rewrites = precision.configure(tf.ConfigProto(), 'bfloat16') \
        .graph_options.rewrite_options
    assert getattr(rewrites, precision.bfloat16_rewrite_field()) == \
        rewrites.ON


def test_float16_graph_keeps_the_float32_variables():
  """Loss scaling adds only local variables: checkpoints stay the same."""
  def build(prec):
    with tf.Graph().as_default():
      global_step = tf.train.get_or_create_global_step()
      images = tf.random_uniform([4, 24, 24, 3])
      labels = tf.constant([0, 1, 2, 3])
      total_loss = cifar10.loss(cifar10.inference(images), labels)
      train_op = cifar10.train(total_loss, global_step, 100, 4,
                               precision=prec)
      saved = {v.op.name: v.dtype.base_dtype
               for v in tf.global_variables()}
      with tf.Session() as sess:
        sess.run([tf.global_variables_initializer(),
                  tf.local_variables_initializer()])
        sess.run(train_op)
        step = sess.run(global_step)
      return saved, [v.op.name for v in tf.local_variables()], step

  saved32, local32, step32 = build('float32')
  saved16, local16, step16 = build('float16')
  assert saved16 == saved32
  assert set(saved32.values()) == {tf.float32, tf.int64}
  assert local32 == []
  assert sorted(local16) == ['loss_scale/current_loss_scale',
                             'loss_scale/good_steps']
  assert step32 == step16 == 1


@pytest.mark.skipif(not TF1, reason='TensorFlow 2.x has the rewrite')
def test_bfloat16_refused_on_tf1(data_dir, tmp_path):
  result = run_script('cifar10_train.py', *train_args(
      data_dir, tmp_path / 'train', 1, '--precision=bfloat16'), check=False)
  assert result.returncode == 1
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1, result.stderr
  assert 'error: --precision=bfloat16' in lines[0]
  assert 'TensorFlow %s' % tf.__version__ in lines[0]
  assert not os.path.exists(os.path.join(str(tmp_path / 'train'),
                                         'checkpoint'))


@pytest.mark.skipif(HAS_GPU, reason='this machine has a GPU')
@pytest.mark.parametrize('script', ['cifar10_train.py', 'cifar10_eval.py'])
def test_float16_refused_without_gpu(script, data_dir, tmp_path):
  args = (train_args(data_dir, tmp_path / 'train', 1)
          if script == 'cifar10_train.py' else
          ('--data_dir=%s' % data_dir, '--checkpoint_dir=%s' % tmp_path,
           '--eval_dir=%s' % (tmp_path / 'eval'), '--run_once'))
  result = run_script(script, *(args + ('--precision=float16',)),
                      check=False)
  assert result.returncode == 1
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1, result.stderr
  assert 'error: --precision=float16 needs a GPU' in lines[0]
  # It suggests bfloat16 only where bfloat16 runs.
  assert ('try --precision=bfloat16' in lines[0]) == (not TF1), lines[0]
  if TF1:
    assert 'no CPU mixed precision either' in lines[0]


@needs_tf2
def test_bfloat16_checkpoint_is_float32_and_evaluates_in_float32(
    data_dir, tmp_path):
  train_dir = str(tmp_path / 'train')
  native = fake_cpuinfo(tmp_path, 'Fake Xeon', 'avx512f avx512_bf16')
  result = run_script('cifar10_train.py', *train_args(
      data_dir, train_dir, 3, '--precision=bfloat16'), env=native)
  assert 'step 3, loss = ' in result.stdout
  assert warnings_in(result.stderr) == []
  dtypes = checkpoint_dtypes(train_dir)
  assert 'conv1/weights' in dtypes and 'local3/weights' in dtypes
  assert {d for name, d in dtypes.items() if name != 'global_step'} == \
      {tf.float32}
  result = run_script('cifar10_eval.py', '--data_dir=%s' % data_dir,
                      '--checkpoint_dir=%s' % train_dir,
                      '--eval_dir=%s' % (tmp_path / 'eval'), '--run_once')
  assert 'precision @ 1 = ' in result.stdout
  assert '(100/100 correct' not in result.stdout  # not trained to perfection
  assert 'global step 3' in result.stdout


@needs_tf2
def test_float32_checkpoint_resumes_under_bfloat16_with_one_warning(
    data_dir, tmp_path):
  train_dir = str(tmp_path / 'train')
  run_script('cifar10_train.py', *train_args(data_dir, train_dir, 2))
  before = checkpoint_dtypes(train_dir)
  emulated = fake_cpuinfo(tmp_path, 'Old Opteron', 'avx512f')
  result = run_script('cifar10_train.py', *train_args(
      data_dir, train_dir, 4, '--precision=bfloat16'), env=emulated)
  assert 'Resuming from' in result.stdout
  assert 'step 4, loss = ' in result.stdout
  assert 'step 2, loss = ' not in result.stdout
  (warning,) = warnings_in(result.stderr)
  assert 'Old Opteron' in warning and 'emulates bfloat16' in warning
  assert checkpoint_dtypes(train_dir) == before
  reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(train_dir))
  assert reader.get_tensor('global_step') == 4
  # And the evaluator itself runs in bfloat16, warning once too.
  result = run_script('cifar10_eval.py', '--data_dir=%s' % data_dir,
                      '--checkpoint_dir=%s' % train_dir,
                      '--eval_dir=%s' % (tmp_path / 'eval'), '--run_once',
                      '--precision=bfloat16', env=emulated)
  assert 'global step 4' in result.stdout
  assert len(warnings_in(result.stderr)) == 1


@needs_tf2
def test_multi_tower_trainer_takes_bfloat16(data_dir, tmp_path):
  native = fake_cpuinfo(tmp_path, 'Fake Xeon', 'amx_bf16')
  train_dir = str(tmp_path / 'train')
  result = run_script('cifar10_multi_gpu_train.py', *train_args(
      data_dir, train_dir, 2, '--precision=bfloat16', '--num_gpus=2',
      '--tower_device=cpu'), env=native)
  assert 'step 2, loss = ' in result.stdout
  assert set(checkpoint_dtypes(train_dir).values()) == {tf.float32,
                                                        tf.int64}
