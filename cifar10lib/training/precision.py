"""Mixed precision: what --precision=float32|bfloat16|float16 changes.

The model's variables, its checkpoints and its summaries stay float32 in
every precision; only the arithmetic changes, through TensorFlow's own graph
rewrites, set in the session's ConfigProto:

  * bfloat16: oneDNN's automatic mixed precision on the CPU (TensorFlow 2.x
    only), which runs convolutions and matrix products in bfloat16. It pays
    on CPUs with bfloat16 instructions (avx512_bf16, amx_bf16); elsewhere
    oneDNN emulates them, slower than float32.
  * float16: automatic mixed precision on GPUs (both runtimes), with dynamic
    loss scaling around the optimizer so that small float16 gradients do not
    flush to zero.

This differs from the tutorial's --use_fp16, which casts the images, and so
every variable, to float16.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import os

from cifar10lib.base.compat import tf
from cifar10lib.base.errors import UserError

PRECISIONS = ('float32', 'bfloat16', 'float16')
DEFAULT = 'float32'
# Where the CPU's flags are read from; tests point it at a fake file.
CPUINFO_ENV = 'CIFAR10_CPUINFO'
CPUINFO = '/proc/cpuinfo'
# CPU flags that mean native bfloat16 arithmetic (x86: AVX-512 BF16, AMX).
BFLOAT16_CPU_FLAGS = ('avx512_bf16', 'amx_bf16')
# The ConfigProto rewrite of oneDNN's bfloat16 mixed precision, by name in
# TensorFlow 2.21 and in older 2.x releases; TensorFlow 1.15 has neither.
BFLOAT16_REWRITES = ('auto_mixed_precision_onednn_bfloat16',
                     'auto_mixed_precision_mkl')


def cpuinfo_path():
  """The cpuinfo file to read: $CIFAR10_CPUINFO, or /proc/cpuinfo."""
  return os.environ.get(CPUINFO_ENV) or CPUINFO


def cpu_info(path=None):
  """(model name, set of flags) of the first CPU in a cpuinfo file.

  A file that cannot be read gives ('unknown CPU', empty set).
  """
  model, cpu_flags = 'unknown CPU', set()
  try:
    with open(path or cpuinfo_path()) as f:
      for line in f:
        key, _, value = line.partition(':')
        key = key.strip()
        if key == 'model name' and model == 'unknown CPU':
          model = value.strip()
        elif key == 'flags' and not cpu_flags:
          cpu_flags = set(value.split())
  except (IOError, OSError):
    pass
  return model, cpu_flags


def bfloat16_rewrite_field():
  """The RewriterConfig field of oneDNN's bfloat16 rewrite, or None."""
  fields = tf.ConfigProto().graph_options.rewrite_options.DESCRIPTOR \
      .fields_by_name
  for name in BFLOAT16_REWRITES:
    if name in fields:
      return name
  return None


def gpu_count():
  return len(tf.config.experimental.list_physical_devices('GPU'))


def check(precision, cpuinfo=None, gpus=None):
  """Raises UserError where precision cannot run; returns warnings (lines).

  bfloat16 is refused on a runtime without oneDNN's rewrite (TensorFlow
  1.15), and warned about on a CPU without bfloat16 instructions. float16
  is refused without a GPU: TensorFlow's float16 rewrite only changes GPU
  ops, so the run would be float32 with loss scaling added, not what was
  asked for. gpus (default: the GPUs TensorFlow sees) is for tests.
  """
  if precision not in PRECISIONS:
    raise ValueError('unknown precision %r' % precision)
  warnings = []
  if precision == 'bfloat16':
    if bfloat16_rewrite_field() is None:
      raise UserError(
          '--precision=bfloat16 needs oneDNN\'s bfloat16 rewrite, which '
          'TensorFlow %s does not have (TensorFlow 2.x does)' % tf.__version__)
    model, cpu_flags = cpu_info(cpuinfo)
    if not cpu_flags & set(BFLOAT16_CPU_FLAGS):
      warnings.append(
          '--precision=bfloat16: this CPU (%s) has neither %s, so oneDNN '
          'emulates bfloat16, likely slower than float32'
          % (model, ' nor '.join(BFLOAT16_CPU_FLAGS)))
  elif precision == 'float16':
    if (gpu_count() if gpus is None else gpus) == 0:
      raise UserError(
          '--precision=float16 needs a GPU: TensorFlow\'s float16 rewrite '
          'leaves CPU ops in float32%s' % (
              ' (on a CPU, try --precision=bfloat16)'
              if bfloat16_rewrite_field() is not None else
              '; this TensorFlow has no CPU mixed precision either'))
  return warnings


def configure(config, precision):
  """Turns on precision's graph rewrite in ConfigProto config; returns it."""
  rewrites = config.graph_options.rewrite_options
  if precision == 'bfloat16':
    setattr(rewrites, bfloat16_rewrite_field(), rewrites.ON)
  elif precision == 'float16':
    rewrites.auto_mixed_precision = rewrites.ON
  return config


def loss_scale(precision):
  """The loss scale the optimizers share under precision, or None.

  float16 gets TensorFlow's dynamic loss scale. Its two variables are
  local ones: checkpoints then hold the same variables in every precision
  (a float32 checkpoint resumes under float16 and back), and a resumed run
  starts again from the initial scale, which adapts within a few steps.
  """
  if precision != 'float16':
    return None

  def local_variable(next_creator, **kwargs):
    kwargs['collections'] = [tf.GraphKeys.LOCAL_VARIABLES]
    return next_creator(**kwargs)

  with tf.variable_creator_scope(local_variable):
    with tf.name_scope(None), tf.variable_scope('loss_scale'):
      return tf.train.experimental.DynamicLossScale()


def scaled_optimizer(opt, scale):
  """opt with loss scale scale (from loss_scale()), or opt when None.

  Optimizers that share scale compute gradients (unscaled again) and apply
  them in turn, as the multi-tower trainer's towers do.
  """
  if scale is None:
    return opt
  return tf.train.experimental.MixedPrecisionLossScaleOptimizer(opt, scale)
