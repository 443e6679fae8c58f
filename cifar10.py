"""The CIFAR-10 model of the TensorFlow tutorial: graph builders and data download.

    inputs, labels = distorted_inputs()          # or inputs(eval_data) to evaluate
    logits = inference(inputs)
    total_loss = loss(logits, labels)
    train_op = train(total_loss, global_step, num_examples_per_epoch)

Variables are named as in the original tutorial (conv1/weights, ...,
softmax_linear/biases), so its checkpoints and ours are interchangeable.

One codebase for both runtimes: TensorFlow 1.15 and TensorFlow 2.x through
tf.compat.v1, with v2 behaviour switched off.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import os
import sys
import warnings

# TensorFlow's C++ logging reads this once, at import time, so it is decided here
# from the raw command line: quiet unless --verbose or the user's own setting.
VERBOSE = any(arg in ('--verbose', '--verbose=true', '--verbose=1')
              for arg in sys.argv[1:])
if not VERBOSE:
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
  warnings.filterwarnings('ignore', category=FutureWarning)
  warnings.filterwarnings('ignore', category=DeprecationWarning)

import hashlib
import re
import shutil
import tarfile
import tempfile

from absl import app
from absl import flags
from six.moves import urllib


def _import_tensorflow_quietly():
  """Imports TensorFlow with its start-up chatter (CUDA probing) hidden.

  Current TensorFlow writes some of it to file descriptor 2 before its log
  level applies, so stderr is pointed at /dev/null for the import alone. An
  import error still raises, and its traceback prints once stderr is back.
  """
  if VERBOSE:
    import tensorflow.compat.v1 as tf_v1
    return tf_v1
  sys.stderr.flush()
  saved = os.dup(2)
  devnull = os.open(os.devnull, os.O_WRONLY)
  os.dup2(devnull, 2)
  try:
    import tensorflow.compat.v1 as tf_v1
  finally:
    os.dup2(saved, 2)
    os.close(saved)
    os.close(devnull)
  tf_v1.get_logger().setLevel('ERROR')
  return tf_v1


tf = _import_tensorflow_quietly()
tf.disable_v2_behavior()

import cifar10_input
from cifar10_input import DataError

FLAGS = flags.FLAGS
flags.DEFINE_integer('batch_size', 128, 'Number of images to process in a batch.',
                     lower_bound=1)
flags.DEFINE_string('data_dir', '/tmp/cifar10_data',
                    'Path to the CIFAR-10 data directory.')
flags.DEFINE_enum('dataset', 'cifar10', ['cifar10', 'cifar100'],
                  'The data: CIFAR-10 (cifar-10-batches-bin/ in --data_dir) '
                  'or CIFAR-100 (cifar-100-binary/).')
flags.DEFINE_enum('cifar100_labels', 'fine', ['fine', 'coarse'],
                  'With --dataset=cifar100: its 100 fine classes or its 20 '
                  'coarse ones.')
flags.DEFINE_integer('validation_examples', 0,
                     'Hold the last N training records out of training; '
                     'cifar10_eval.py --eval_data=validation evaluates them '
                     '(give it the same N).', lower_bound=0)
flags.DEFINE_float('min_fraction_of_examples_in_queue',
                   cifar10_input.MIN_FRACTION_OF_EXAMPLES_IN_QUEUE,
                   'Fraction of an epoch the shuffling queue holds before '
                   'training starts; smaller starts sooner but shuffles '
                   'less.', lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_boolean('use_fp16', False, 'Train the model using fp16.')
flags.DEFINE_string('data_url', None,
                    'Where to download the data from (default: the official '
                    'URL, or $CIFAR10_DATA_URL when set).')
flags.DEFINE_boolean('verbose', False,
                     'Show TensorFlow\'s own log messages and warnings.')
flags.DEFINE_integer('intra_op_threads', 0,
                     'Threads one TensorFlow op may use (0: TensorFlow '
                     'decides, one per core available).', lower_bound=0)
flags.DEFINE_integer('inter_op_threads', 0,
                     'TensorFlow ops run at the same time (0: TensorFlow '
                     'decides).', lower_bound=0)
flags.DEFINE_boolean('xla', False,
                     'Compile the graph with XLA\'s just-in-time compiler '
                     '(opt-in; see README, Performance).')

# The tutorial's model hyper-parameters.
MOVING_AVERAGE_DECAY = 0.9999     # decay of the variables' moving averages
LOSS_AVERAGE_DECAY = 0.9          # decay of the losses' moving averages
NUM_EPOCHS_PER_DECAY = 350.0      # epochs after which the learning rate decays
LEARNING_RATE_DECAY_FACTOR = 0.1
INITIAL_LEARNING_RATE = 0.1
CONV_WEIGHT_STDDEV = 5e-2
LOCAL_WEIGHT_STDDEV = 0.04
LOCAL_WEIGHT_DECAY = 0.004
LRN_DEPTH_RADIUS = 4
LRN_BIAS = 1.0
LRN_ALPHA = 0.001 / 9.0
LRN_BETA = 0.75
LOCAL3_UNITS = 384
LOCAL4_UNITS = 192

# Beyond the tutorial: the defaults of the flags below, which give back the
# tutorial's model and training exactly.
OPTIMIZER = 'sgd'
MOMENTUM = 0.9                    # of the momentum and nesterov optimizers
DROPOUT_KEEP_PROB = 1.0           # on local3 and local4, in training only
NORM = 'lrn'
TOP_LAYERS = 'fully_connected'
BATCH_NORM_DECAY = 0.99           # of the moving mean and variance
BATCH_NORM_EPSILON = 1e-3
# cuda-convnet's locally connected variant of local3 and local4: each output
# position has its own 3x3 filters over the previous map.
LOCALLY_CONNECTED_SIZE = 3
LOCALLY_CONNECTED_DEPTH = 32

flags.DEFINE_enum('optimizer', OPTIMIZER,
                  ['sgd', 'momentum', 'nesterov', 'adagrad', 'rmsprop', 'adam'],
                  'Training algorithm; "sgd" is the tutorial\'s plain gradient '
                  'descent.')
flags.DEFINE_float('learning_rate', INITIAL_LEARNING_RATE,
                   'Initial learning rate (adam and rmsprop usually want '
                   'about 0.001).', lower_bound=0.0)
flags.DEFINE_float('momentum', MOMENTUM,
                   'Momentum of --optimizer=momentum and nesterov.',
                   lower_bound=0.0)
flags.DEFINE_float('num_epochs_per_decay', NUM_EPOCHS_PER_DECAY,
                   'Epochs after which the learning rate decays.',
                   lower_bound=1e-6)
flags.DEFINE_float('learning_rate_decay_factor', LEARNING_RATE_DECAY_FACTOR,
                   'Factor applied to the learning rate at each decay.',
                   lower_bound=0.0)
flags.DEFINE_float('dropout_keep_prob', DROPOUT_KEEP_PROB,
                   'Probability of keeping a unit of local3 and local4 in '
                   'training; 1.0 means no dropout.',
                   lower_bound=1e-6, upper_bound=1.0)
flags.DEFINE_enum('norm', NORM, ['lrn', 'batch_norm', 'none'],
                  'Normalization: the tutorial\'s local response '
                  'normalization after conv1 and conv2, batch normalization '
                  'before the ReLU of conv1, conv2, local3 and local4, or '
                  'none.')
flags.DEFINE_enum('top_layers', TOP_LAYERS,
                  ['fully_connected', 'locally_connected'],
                  'local3 and local4 as the tutorial\'s fully connected '
                  'layers, or as locally connected layers (unshared 3x3 '
                  'filters at each position).')

NUM_CLASSES = cifar10_input.NUM_CLASSES
TOWER_NAME = 'tower'

DATA_URL = cifar10_input.CIFAR10.url
DATA_MD5 = cifar10_input.CIFAR10.md5
TARBALL = cifar10_input.CIFAR10.tarball
DOWNLOAD_TIMEOUT_SECS = 60


class DownloadError(DataError):
  """The data could not be downloaded or unpacked; nothing partial was kept."""


def _op_name(tag):
  return re.sub(r'[^\w./-]', '_', tag)


def _scalar_summary(tag, value):
  """A scalar summary whose TensorBoard tag is exactly `tag`.

  tf.summary.scalar derives its tag from a fresh op name, so `total_loss`
  would become `total_loss_1` (the loss op owns that name) and ' (raw)'
  would become '__raw_'. The raw op takes the tag as given.
  """
  op = tf.raw_ops.ScalarSummary(tags=tag, values=value, name=_op_name(tag))
  tf.add_to_collection(tf.GraphKeys.SUMMARIES, op)
  return op


def _histogram_summary(tag, values):
  """A histogram summary whose tag is exactly `tag` (see _scalar_summary)."""
  op = tf.raw_ops.HistogramSummary(tag=tag, values=values, name=_op_name(tag))
  tf.add_to_collection(tf.GraphKeys.SUMMARIES, op)
  return op


def _activation_summary(x, layer):
  """Histogram and sparsity summaries of a layer's activations.

  They are made at the root name scope, so their tags are `<layer>/...` in
  every script, without the `tower_N/` prefix of multi-device training.
  """
  with tf.name_scope(None):
    _histogram_summary(layer + '/activations', x)
    _scalar_summary(layer + '/sparsity', tf.nn.zero_fraction(x))


def _setting(name, value):
  """value when given, else flag `name` (its default until flags are parsed).

  Library functions take their options as arguments so that they build any
  variant in-process; left out, the command line decides.
  """
  return FLAGS[name].value if value is None else value


def _variable_on_cpu(name, shape, initializer, dtype, trainable=True):
  with tf.device('/cpu:0'):
    return tf.get_variable(name, shape, initializer=initializer, dtype=dtype,
                           trainable=trainable)


def _variable_with_weight_decay(name, shape, stddev, wd, dtype):
  """A truncated-normal variable whose `wd * l2_loss` joins the `losses`."""
  var = _variable_on_cpu(
      name, shape, tf.truncated_normal_initializer(stddev=stddev, dtype=dtype),
      dtype)
  if wd is not None:
    weight_decay = tf.multiply(tf.nn.l2_loss(var), wd, name='weight_loss')
    tf.add_to_collection('losses', weight_decay)
  return var


def _batch_norm(x, axes, train, dtype):
  """Batch normalization of x over axes, with a learned offset and scale.

  Training normalizes with the batch's statistics and adds the ops updating
  the moving mean and variance to the UPDATE_OPS collection (the trainers
  run them with the train op); evaluation normalizes with the moving ones,
  which are variables and so are saved in checkpoints.
  """
  shape = x.shape.as_list()[len(axes):]
  beta = _variable_on_cpu('beta', shape, tf.zeros_initializer(), dtype)
  gamma = _variable_on_cpu('gamma', shape, tf.ones_initializer(), dtype)
  moving_mean = _variable_on_cpu('moving_mean', shape, tf.zeros_initializer(),
                                 dtype, trainable=False)
  moving_variance = _variable_on_cpu('moving_variance', shape,
                                     tf.ones_initializer(), dtype,
                                     trainable=False)
  if train:
    mean, variance = tf.nn.moments(x, axes)
    for moving, batch in ((moving_mean, mean), (moving_variance, variance)):
      tf.add_to_collection(tf.GraphKeys.UPDATE_OPS, tf.assign_sub(
          moving, (moving - batch) * (1.0 - BATCH_NORM_DECAY)))
  else:
    mean, variance = moving_mean, moving_variance
  return tf.nn.batch_normalization(x, mean, variance, beta, gamma,
                                   BATCH_NORM_EPSILON)


def _conv_relu(images, name, in_depth, bias_init, dtype, norm='lrn',
               train=True):
  with tf.variable_scope(name) as scope:
    kernel = _variable_with_weight_decay(
        'weights', [5, 5, in_depth, 64], CONV_WEIGHT_STDDEV, None, dtype)
    conv = tf.nn.conv2d(images, kernel, [1, 1, 1, 1], padding='SAME')
    if norm == 'batch_norm':
      # Its offset beta does the biases' work.
      pre_activation = _batch_norm(conv, [0, 1, 2], train, dtype)
    else:
      biases = _variable_on_cpu('biases', [64],
                                tf.constant_initializer(bias_init), dtype)
      pre_activation = tf.nn.bias_add(conv, biases)
    out = tf.nn.relu(pre_activation, name=scope.name)
  _activation_summary(out, name)
  return out


def _fully_connected(x, units, dtype):
  """x [batch, n] times weights [n, units]."""
  weights = _variable_with_weight_decay(
      'weights', [x.shape.as_list()[1], units],
      LOCAL_WEIGHT_STDDEV, LOCAL_WEIGHT_DECAY, dtype)
  return tf.matmul(x, weights)


def locally_connected(x, depth, size, dtype):
  """A SAME-padded, stride-1 convolution whose filters differ per position.

  x is [batch, height, width, channels]. The weights variable is
  [height, width, size, size, channels, depth]: output position (i, j) sees
  the size x size neighbourhood of input position (i, j) through its own
  filters. Returns [batch, height, width, depth], without biases.
  """
  _, height, width, channels = x.shape.as_list()
  weights = _variable_with_weight_decay(
      'weights', [height, width, size, size, channels, depth],
      LOCAL_WEIGHT_STDDEV, LOCAL_WEIGHT_DECAY, dtype)
  patch = size * size * channels
  # Each patch comes out flattened in (row, column, channel) order, the
  # order of a position's weights reshaped below.
  patches = tf.extract_image_patches(x, ksizes=[1, size, size, 1],
                                     strides=[1, 1, 1, 1], rates=[1, 1, 1, 1],
                                     padding='SAME')
  patches = tf.transpose(tf.reshape(patches, [-1, height * width, patch]),
                         [1, 0, 2])
  # One matrix product per position: [positions, batch, depth].
  out = tf.matmul(patches, tf.reshape(weights, [height * width, patch, depth]))
  return tf.reshape(tf.transpose(out, [1, 0, 2]), [-1, height, width, depth])


def _local_relu(x, name, units, dtype, norm='lrn', train=True,
                top_layers='fully_connected', keep_prob=1.0):
  """local3 or local4: fully or locally connected, then ReLU and dropout."""
  with tf.variable_scope(name) as scope:
    if top_layers == 'locally_connected':
      out = locally_connected(x, LOCALLY_CONNECTED_DEPTH,
                              LOCALLY_CONNECTED_SIZE, dtype)
    else:
      out = _fully_connected(x, units, dtype)
    if norm == 'batch_norm':
      out = _batch_norm(out, [0], train, dtype)
    else:
      biases = _variable_on_cpu('biases', out.shape.as_list()[1:],
                                tf.constant_initializer(0.1), dtype)
      out = out + biases
    out = tf.nn.relu(out, name=scope.name)
  _activation_summary(out, name)
  if train and keep_prob < 1.0:
    out = tf.nn.dropout(out, rate=1.0 - keep_prob, name=name + '_dropout')
  return out


def _pool(x, name):
  return tf.nn.max_pool(x, ksize=[1, 3, 3, 1], strides=[1, 2, 2, 1],
                        padding='SAME', name=name)


def _lrn(x, name):
  return tf.nn.lrn(x, LRN_DEPTH_RADIUS, bias=LRN_BIAS, alpha=LRN_ALPHA,
                   beta=LRN_BETA, name=name)


def _flatten(x):
  flat_size = 1
  for dim in x.shape.as_list()[1:]:
    flat_size *= dim
  return tf.reshape(x, [-1, flat_size])


def inference(images, train=True, norm=None, top_layers=None,
              dropout_keep_prob=None, num_classes=None):
  """Builds the tutorial's network; returns unnormalized logits [batch, 10].

  The variables take the dtype of `images` (float16 with --use_fp16).
  train=False builds it for evaluation: no dropout, and batch normalization
  with its moving statistics. norm, top_layers and dropout_keep_prob default
  to the flags of the same names; their defaults build the tutorial's graph.
  num_classes defaults to that of --dataset (10 for CIFAR-10).
  """
  dtype = images.dtype
  num_classes = num_classes or dataset().num_classes
  norm = _setting('norm', norm)
  top_layers = _setting('top_layers', top_layers)
  keep_prob = _setting('dropout_keep_prob', dropout_keep_prob)
  conv1 = _conv_relu(images, 'conv1', 3, 0.0, dtype, norm, train)
  pool1 = _pool(conv1, 'pool1')
  norm1 = _lrn(pool1, 'norm1') if norm == 'lrn' else pool1
  conv2 = _conv_relu(norm1, 'conv2', 64, 0.1, dtype, norm, train)
  norm2 = _lrn(conv2, 'norm2') if norm == 'lrn' else conv2
  pool2 = _pool(norm2, 'pool2')
  if top_layers == 'fully_connected':
    pool2 = _flatten(pool2)
  local3 = _local_relu(pool2, 'local3', LOCAL3_UNITS, dtype, norm, train,
                       top_layers, keep_prob)
  local4 = _local_relu(local3, 'local4', LOCAL4_UNITS, dtype, norm, train,
                       top_layers, keep_prob)
  if top_layers == 'locally_connected':
    local4 = _flatten(local4)
  # The softmax is folded into the loss (sparse_softmax_cross_entropy_with_logits
  # takes unnormalized logits and is more stable).
  with tf.variable_scope('softmax_linear') as scope:
    dim = local4.shape.as_list()[1]
    weights = _variable_with_weight_decay(
        'weights', [dim, num_classes], 1.0 / dim, None, dtype)
    biases = _variable_on_cpu('biases', [num_classes],
                              tf.constant_initializer(0.0), dtype)
    softmax_linear = tf.add(tf.matmul(local4, weights), biases, name=scope.name)
  _activation_summary(softmax_linear, 'softmax_linear')
  return softmax_linear


def loss(logits, labels, scope=None):
  """Mean cross-entropy plus every weight-decay term; returns `total_loss`.

  `scope` restricts the `losses` collection to one tower's terms.
  """
  labels = tf.cast(labels, tf.int64)
  cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(
      labels=labels, logits=logits, name='cross_entropy_per_example')
  cross_entropy_mean = tf.reduce_mean(cross_entropy, name='cross_entropy')
  tf.add_to_collection('losses', cross_entropy_mean)
  return tf.add_n(tf.get_collection('losses', scope), name='total_loss')


def add_loss_summaries(total_loss, losses):
  """Moving averages of the losses, each with a raw and an averaged scalar.

  Returns the op updating the averages. Tags drop any `tower_N/` prefix.
  The averaged scalars include the step's own loss on both runtimes.
  """
  loss_averages = tf.train.ExponentialMovingAverage(LOSS_AVERAGE_DECAY,
                                                    name='avg')
  loss_averages_op = loss_averages.apply(losses + [total_loss])
  with tf.name_scope(None):
    for l in losses + [total_loss]:
      name = re.sub('%s_[0-9]*/' % TOWER_NAME, '', l.op.name)
      _scalar_summary(name + ' (raw)', l)
      # Unordered, the read would race the update and show either value.
      with tf.control_dependencies([loss_averages_op]):
        _scalar_summary(name, tf.identity(loss_averages.average(l)))
  return loss_averages_op


def learning_rate(global_step, num_examples_per_epoch, examples_per_step,
                  initial=None, num_epochs_per_decay=None, decay_factor=None):
  """The tutorial's staircase schedule: 0.1, times 0.1 every 350 epochs.

  initial, num_epochs_per_decay and decay_factor default to --learning_rate,
  --num_epochs_per_decay and --learning_rate_decay_factor.
  """
  initial = _setting('learning_rate', initial)
  num_epochs_per_decay = _setting('num_epochs_per_decay', num_epochs_per_decay)
  decay_factor = _setting('learning_rate_decay_factor', decay_factor)
  num_batches_per_epoch = num_examples_per_epoch / examples_per_step
  decay_steps = max(int(num_batches_per_epoch * num_epochs_per_decay), 1)
  lr = tf.train.exponential_decay(initial, global_step, decay_steps,
                                  decay_factor, staircase=True)
  tf.summary.scalar('learning_rate', lr)
  return lr


def optimizer(lr, name=None, momentum=None):
  """The training algorithm: --optimizer, by default plain gradient descent.

  momentum (default --momentum) is that of the momentum and nesterov ones;
  the others keep TensorFlow's defaults for everything but the rate.
  """
  name = _setting('optimizer', name)
  if name == 'sgd':
    return tf.train.GradientDescentOptimizer(lr)
  if name in ('momentum', 'nesterov'):
    return tf.train.MomentumOptimizer(lr, _setting('momentum', momentum),
                                      use_nesterov=name == 'nesterov')
  if name == 'adagrad':
    return tf.train.AdagradOptimizer(lr)
  if name == 'rmsprop':
    return tf.train.RMSPropOptimizer(lr)
  if name == 'adam':
    return tf.train.AdamOptimizer(lr)
  raise ValueError('unknown optimizer %r' % name)


def apply_gradients(grads, global_step, lr, dependencies=(),
                    make_sync_optimizer=None):
  """Applies grads, then updates the variables' moving averages.

  Returns the train op. Histograms of every variable and gradient are added.
  make_sync_optimizer(optimizer, variable_averages), when given, wraps the
  optimizer in one that aggregates several workers' gradients (a
  SyncReplicasOptimizer) and updates the averages once per aggregated update.
  """
  opt = optimizer(lr)
  if make_sync_optimizer is not None:
    opt = make_sync_optimizer(opt, tf.train.ExponentialMovingAverage(
        MOVING_AVERAGE_DECAY, global_step))
  with tf.control_dependencies(list(dependencies)):
    apply_gradient_op = opt.apply_gradients(grads, global_step=global_step)
  for var in tf.trainable_variables():
    _histogram_summary(var.op.name, var)
  for grad, var in grads:
    if grad is not None:
      _histogram_summary(var.op.name + '/gradients', grad)
  if make_sync_optimizer is not None:
    return apply_gradient_op
  variable_averages = tf.train.ExponentialMovingAverage(
      MOVING_AVERAGE_DECAY, global_step)
  with tf.control_dependencies([apply_gradient_op]):
    return variable_averages.apply(tf.trainable_variables())


def train(total_loss, global_step, num_examples_per_epoch, batch_size=None,
          make_sync_optimizer=None):
  """Returns an op running one step of training on total_loss.

  num_examples_per_epoch and batch_size set the learning-rate schedule's
  decay steps; batch_size defaults to --batch_size. make_sync_optimizer: see
  apply_gradients.
  """
  if batch_size is None:
    batch_size = FLAGS.batch_size
  lr = learning_rate(global_step, num_examples_per_epoch, batch_size)
  loss_averages_op = add_loss_summaries(total_loss,
                                        tf.get_collection('losses'))
  with tf.control_dependencies([loss_averages_op]):
    grads = optimizer(lr).compute_gradients(total_loss)
  # Batch normalization's moving statistics follow the batches trained on.
  return apply_gradients(grads, global_step, lr,
                         dependencies=tf.get_collection(
                             tf.GraphKeys.UPDATE_OPS),
                         make_sync_optimizer=make_sync_optimizer)


def variables_to_restore():
  """The moving-average (shadow) values, restored into the model variables."""
  return tf.train.ExponentialMovingAverage(
      MOVING_AVERAGE_DECAY).variables_to_restore()


def _cast_for_model(images):
  return tf.cast(images, tf.float16) if _setting('use_fp16', None) else images


def dataset():
  """The cifar10_input.Dataset that --dataset and --cifar100_labels name."""
  return cifar10_input.dataset(_setting('dataset', None),
                               _setting('cifar100_labels', None))


def data_split(split):
  """(filenames, records, number of examples) of one split of --data_dir.

  split: 'train' (the training files less their last --validation_examples
  records; 'train_eval' is the same records), 'validation' (those last
  records) or 'test'. records is the (start, stop) range over the files,
  for cifar10_input's `records` arguments. Raises UserError when
  --validation_examples does not fit.
  """
  ds = dataset()
  filenames = cifar10_input.data_files(_setting('data_dir', None),
                                       split == 'test', ds)
  total = cifar10_input.count_examples(filenames, ds)
  if split == 'test':
    return filenames, None, total
  held_out = _setting('validation_examples', None)
  if held_out >= total:
    raise UserError('--validation_examples=%d: must be less than the %d '
                    'training records' % (held_out, total))
  if split == 'validation':
    if not held_out:
      raise UserError('--eval_data=validation needs --validation_examples=N, '
                      'the N that training held out')
    return filenames, (total - held_out, total), held_out
  return filenames, (0, total - held_out), total - held_out


def distorted_inputs(batch_size=None, **kwargs):
  """Training batches of --data_dir's training split, per the flags.

  The flags decide the batch size, dataset, validation hold-out, queue fill
  and --use_fp16; keyword arguments go to cifar10_input.distorted_inputs
  and override them (filenames given: all of those files, no hold-out).
  """
  if 'filenames' not in kwargs:
    kwargs['filenames'], kwargs['records'], examples = data_split('train')
    kwargs.setdefault('num_examples_per_epoch', examples)
  kwargs.setdefault('ds', dataset())
  kwargs.setdefault('min_fraction_of_examples_in_queue',
                    _setting('min_fraction_of_examples_in_queue', None))
  images, labels = cifar10_input.distorted_inputs(
      data_dir=_setting('data_dir', None),
      batch_size=batch_size or _setting('batch_size', None), **kwargs)
  return _cast_for_model(images), labels


def inputs(eval_data, **kwargs):
  """Evaluation batches from --data_dir, --batch_size, --use_fp16.

  eval_data: True or 'test' for the test file, 'validation' for the held-out
  training records, False or 'train_eval' for the training split.
  """
  split = {True: 'test', False: 'train_eval'}.get(eval_data, eval_data)
  if 'filenames' not in kwargs:
    kwargs['filenames'], kwargs['records'], _ = data_split(split)
  kwargs.setdefault('ds', dataset())
  images, labels = cifar10_input.inputs(
      eval_data=split == 'test', data_dir=_setting('data_dir', None),
      batch_size=_setting('batch_size', None), **kwargs)
  return _cast_for_model(images), labels


def _md5(path):
  digest = hashlib.md5()
  with open(path, 'rb') as f:
    for chunk in iter(lambda: f.read(1 << 20), b''):
      digest.update(chunk)
  return digest.hexdigest()


def _download(url, dest_dir, expected_md5, tarball=TARBALL):
  """Downloads url into dest_dir/tarball, verified; returns the path.

  The bytes go to a temporary file first, renamed only once complete and
  verified, so tarball is never a partial or corrupt file.
  """
  final = os.path.join(dest_dir, tarball)
  fd, part = tempfile.mkstemp(prefix=tarball + '.', suffix='.part',
                              dir=dest_dir)
  try:
    with os.fdopen(fd, 'wb') as out:
      response = urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_SECS)
      expected_size = int(response.headers.get('Content-Length') or 0)
      received = 0
      for chunk in iter(lambda: response.read(1 << 16), b''):
        out.write(chunk)
        received += len(chunk)
        if sys.stderr.isatty():
          sys.stderr.write('\r>> Downloading %s %.1f%%' % (
              tarball, 100.0 * received / max(expected_size, 1)))
          sys.stderr.flush()
      if sys.stderr.isatty():
        sys.stderr.write('\n')
    if expected_size and received != expected_size:
      raise DownloadError('%s: transfer truncated, got %d of %d bytes'
                          % (url, received, expected_size))
    actual_md5 = _md5(part)
    if actual_md5 != expected_md5:
      raise DownloadError('%s: checksum mismatch, MD5 %s, expected %s'
                          % (url, actual_md5, expected_md5))
    os.rename(part, final)
    print('Successfully downloaded %s (%d bytes).' % (tarball, received))
    return final
  except urllib.error.HTTPError as e:
    # Its `reason` alone ("Not Found") would hide the status code.
    raise DownloadError('%s: download failed: HTTP error %d %s'
                        % (url, e.code, e.reason))
  except (IOError, OSError, ValueError) as e:
    raise DownloadError('%s: download failed: %s' % (url, getattr(e, 'reason', e)))
  finally:
    if os.path.exists(part):
      os.remove(part)


def _extract(tarball, dest_dir, ds):
  """Unpacks ds.batches_dir from tarball into dest_dir, all or nothing."""
  staging = tempfile.mkdtemp(prefix='.extract-', dir=dest_dir)
  try:
    try:
      with tarfile.open(tarball, 'r:gz') as tar:
        members = [m for m in tar.getmembers()
                   if m.name.split('/')[0] == ds.batches_dir]
        if not members:
          raise DownloadError('%s: holds no %s/ directory'
                              % (tarball, ds.batches_dir))
        for m in members:
          if not (m.isfile() or m.isdir()) or '..' in m.name.split('/'):
            raise DownloadError('%s: unsafe member %s' % (tarball, m.name))
        tar.extractall(staging, members)
    except (tarfile.TarError, IOError, OSError, EOFError) as e:
      raise DownloadError('%s: not a readable gzip tar file: %s' % (tarball, e))
    try:
      cifar10_input.count_examples(
          cifar10_input.data_files(staging, False, ds) +
          cifar10_input.data_files(staging, True, ds), ds)
    except DataError as e:
      # Name the tarball's member, not the staging copy about to be removed.
      raise DownloadError('%s: %s' % (
          tarball, str(e).replace(staging + os.sep, '')))
    os.rename(os.path.join(staging, ds.batches_dir),
              os.path.join(dest_dir, ds.batches_dir))
  finally:
    shutil.rmtree(staging, ignore_errors=True)


def maybe_download_and_extract(data_dir=None, url=None, expected_md5=None,
                               ds=None):
  """Makes sure data_dir/cifar-10-batches-bin/ exists, downloading if needed.

  Present data is left alone. A verified tarball already in data_dir is
  unpacked without downloading it again. Raises DownloadError (one line naming
  the directory, the URL and the manual way) when the data cannot be had.
  ds (default: --dataset's) picks the directory, URL, checksum and tarball.
  """
  ds = ds or dataset()
  data_dir = data_dir or FLAGS.data_dir
  url = url or _data_url(ds)
  expected_md5 = expected_md5 or ds.md5
  batches = os.path.join(data_dir, ds.batches_dir)
  if os.path.isdir(batches):
    return
  created = _missing_dirs(data_dir)
  downloaded = None
  try:
    try:
      if not os.path.isdir(data_dir):
        os.makedirs(data_dir)
    except OSError as e:
      raise DownloadError('cannot create the directory: %s' % e.strerror)
    tarball = os.path.join(data_dir, ds.tarball)
    if not (os.path.isfile(tarball) and _md5(tarball) == expected_md5):
      tarball = downloaded = _download(url, data_dir, expected_md5, ds.tarball)
    _extract(tarball, data_dir, ds)
  except DataError as e:
    # A failed attempt leaves the disk as it was: a tarball that cannot be
    # unpacked would only make the next attempt fail without downloading.
    if downloaded:
      os.remove(downloaded)
    for path in created:
      try:
        os.rmdir(path)
      except OSError:
        pass  # not empty, or never made: not ours to remove
    raise DownloadError(
        '--data_dir=%s has no %s/ and it could not be fetched from %s (%s); '
        'download that file by hand and unpack it into %s'
        % (data_dir, ds.batches_dir, url, e, data_dir))


def _missing_dirs(path):
  """path and those of its parents that do not exist yet, deepest first."""
  missing = []
  path = os.path.abspath(path)
  while not os.path.exists(path):
    missing.append(path)
    path = os.path.dirname(path)
  return missing


def _data_url(ds):
  if flags.FLAGS.is_parsed() and FLAGS.data_url:
    return FLAGS.data_url
  if ds.name == 'cifar10':
    return os.environ.get('CIFAR10_DATA_URL') or ds.url
  return ds.url


class UserError(Exception):
  """Something the user must fix (a flag, a directory, a checkpoint).

  Scripts print its message as one line, without a traceback, and exit 1.
  """


def read_checkpoint(path):
  """Returns {variable name: shape} of a checkpoint, after reading every value.

  Raises UserError naming the checkpoint when any of it cannot be read (a
  truncated or corrupt file), so that nobody trains or evaluates from it.
  """
  # TensorFlow 2.x reports a data file shorter than its index as IndexError.
  try:
    reader = tf.train.NewCheckpointReader(path)
    shapes = reader.get_variable_to_shape_map()
    for name in shapes:
      reader.get_tensor(name)
  except (tf.errors.OpError, ValueError, RuntimeError, IndexError) as e:
    message = getattr(e, 'message', None) or str(e)
    raise UserError('checkpoint %s is unreadable: %s'
                    % (path, message.strip().splitlines()[0]))
  return shapes


def checkpoint_var_list(checkpoint, shadow_vars, raw_vars, moving_average=True):
  """The {name in checkpoint: variable} to restore from checkpoint.

  shadow_vars maps the moving averages' names to the model's variables (see
  variables_to_restore), raw_vars the weights' own names. With moving_average
  the averages are restored, or the raw weights with a warning when the
  checkpoint holds no averages; without it, the raw weights. Raises UserError
  when the checkpoint cannot be read, and naming the first variable it lacks
  or holds in another shape.
  """
  shapes = read_checkpoint(checkpoint)
  var_list = shadow_vars if moving_average else raw_vars
  if moving_average and not all(name in shapes for name in var_list):
    if all(name in shapes for name in raw_vars):
      print('Warning: %s holds no moving averages; using the raw weights.'
            % checkpoint, flush=True)
      var_list = raw_vars
  hint = (' (was it trained with other --norm, --top_layers, --dataset or '
          '--optimizer, or by another training script?)')
  for name, var in sorted(var_list.items()):
    if name not in shapes:
      raise UserError('checkpoint %s does not fit this model: it has no '
                      'variable %s%s' % (checkpoint, name, hint))
    if list(shapes[name]) != var.shape.as_list():
      raise UserError(
          'checkpoint %s does not fit this model: variable %s has shape %s '
          'there, %s in the model%s' % (checkpoint, name, list(shapes[name]),
                                        var.shape.as_list(), hint))
  return var_list


def session_config(**kwargs):
  """A ConfigProto with the thread and XLA flags; kwargs are more fields."""
  config = tf.ConfigProto(
      intra_op_parallelism_threads=FLAGS.intra_op_threads,
      inter_op_parallelism_threads=FLAGS.inter_op_threads, **kwargs)
  if FLAGS.xla:
    config.graph_options.optimizer_options.global_jit_level = (
        tf.OptimizerOptions.ON_1)
  return config


def run(main):
  """Runs main under absl, turning user mistakes into one line and exit 1.

  Flag errors and data errors are reported without a traceback; anything else
  is a bug and keeps its traceback.
  """
  def parse(argv):
    try:
      return FLAGS(argv)
    except flags.Error as e:
      sys.stderr.write('%s: error: %s\n' % (os.path.basename(argv[0]), e))
      sys.exit(2)

  def guarded(argv):
    try:
      return main(argv)
    except (DataError, UserError) as e:
      sys.stderr.write('%s: error: %s\n' % (os.path.basename(argv[0]), e))
      sys.exit(1)

  app.run(guarded, flags_parser=parse)
