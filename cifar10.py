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
flags.DEFINE_boolean('use_fp16', False, 'Train the model using fp16.')
flags.DEFINE_string('data_url', None,
                    'Where to download the data from (default: the official '
                    'URL, or $CIFAR10_DATA_URL when set).')
flags.DEFINE_boolean('verbose', False,
                     'Show TensorFlow\'s own log messages and warnings.')

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

NUM_CLASSES = cifar10_input.NUM_CLASSES
TOWER_NAME = 'tower'

DATA_URL = 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz'
DATA_MD5 = 'c32a1d4ab5d03f1284b67883e8d87530'
TARBALL = 'cifar-10-binary.tar.gz'
DOWNLOAD_TIMEOUT_SECS = 60


class DownloadError(DataError):
  """The data could not be downloaded or unpacked; nothing partial was kept."""


def _activation_summary(x, layer):
  """Histogram and sparsity summaries of a layer's activations.

  They are made at the root name scope, so their tags are `<layer>/...` in
  every script, without the `tower_N/` prefix of multi-device training.
  """
  with tf.name_scope(None):
    tf.summary.histogram(layer + '/activations', x)
    tf.summary.scalar(layer + '/sparsity', tf.nn.zero_fraction(x))


def _variable_on_cpu(name, shape, initializer, dtype):
  with tf.device('/cpu:0'):
    return tf.get_variable(name, shape, initializer=initializer, dtype=dtype)


def _variable_with_weight_decay(name, shape, stddev, wd, dtype):
  """A truncated-normal variable whose `wd * l2_loss` joins the `losses`."""
  var = _variable_on_cpu(
      name, shape, tf.truncated_normal_initializer(stddev=stddev, dtype=dtype),
      dtype)
  if wd is not None:
    weight_decay = tf.multiply(tf.nn.l2_loss(var), wd, name='weight_loss')
    tf.add_to_collection('losses', weight_decay)
  return var


def _conv_relu(images, name, in_depth, bias_init, dtype):
  with tf.variable_scope(name) as scope:
    kernel = _variable_with_weight_decay(
        'weights', [5, 5, in_depth, 64], CONV_WEIGHT_STDDEV, None, dtype)
    conv = tf.nn.conv2d(images, kernel, [1, 1, 1, 1], padding='SAME')
    biases = _variable_on_cpu('biases', [64],
                              tf.constant_initializer(bias_init), dtype)
    out = tf.nn.relu(tf.nn.bias_add(conv, biases), name=scope.name)
  _activation_summary(out, name)
  return out


def _local_relu(x, name, units, dtype):
  with tf.variable_scope(name) as scope:
    weights = _variable_with_weight_decay(
        'weights', [x.shape.as_list()[1], units],
        LOCAL_WEIGHT_STDDEV, LOCAL_WEIGHT_DECAY, dtype)
    biases = _variable_on_cpu('biases', [units], tf.constant_initializer(0.1),
                              dtype)
    out = tf.nn.relu(tf.matmul(x, weights) + biases, name=scope.name)
  _activation_summary(out, name)
  return out


def _pool(x, name):
  return tf.nn.max_pool(x, ksize=[1, 3, 3, 1], strides=[1, 2, 2, 1],
                        padding='SAME', name=name)


def _lrn(x, name):
  return tf.nn.lrn(x, LRN_DEPTH_RADIUS, bias=LRN_BIAS, alpha=LRN_ALPHA,
                   beta=LRN_BETA, name=name)


def inference(images):
  """Builds the tutorial's network; returns unnormalized logits [batch, 10].

  The variables take the dtype of `images` (float16 with --use_fp16).
  """
  dtype = images.dtype
  conv1 = _conv_relu(images, 'conv1', 3, 0.0, dtype)
  pool1 = _pool(conv1, 'pool1')
  norm1 = _lrn(pool1, 'norm1')
  conv2 = _conv_relu(norm1, 'conv2', 64, 0.1, dtype)
  norm2 = _lrn(conv2, 'norm2')
  pool2 = _pool(norm2, 'pool2')
  flat_size = 1
  for dim in pool2.shape.as_list()[1:]:
    flat_size *= dim
  reshape = tf.reshape(pool2, [-1, flat_size])
  local3 = _local_relu(reshape, 'local3', LOCAL3_UNITS, dtype)
  local4 = _local_relu(local3, 'local4', LOCAL4_UNITS, dtype)
  # The softmax is folded into the loss (sparse_softmax_cross_entropy_with_logits
  # takes unnormalized logits and is more stable).
  with tf.variable_scope('softmax_linear') as scope:
    weights = _variable_with_weight_decay(
        'weights', [LOCAL4_UNITS, NUM_CLASSES], 1.0 / LOCAL4_UNITS, None, dtype)
    biases = _variable_on_cpu('biases', [NUM_CLASSES],
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
  """
  loss_averages = tf.train.ExponentialMovingAverage(LOSS_AVERAGE_DECAY,
                                                    name='avg')
  loss_averages_op = loss_averages.apply(losses + [total_loss])
  with tf.name_scope(None):
    for l in losses + [total_loss]:
      name = re.sub('%s_[0-9]*/' % TOWER_NAME, '', l.op.name)
      tf.summary.scalar(name + ' (raw)', l)
      tf.summary.scalar(name, loss_averages.average(l))
  return loss_averages_op


def learning_rate(global_step, num_examples_per_epoch, examples_per_step):
  """The tutorial's staircase schedule: 0.1, times 0.1 every 350 epochs."""
  num_batches_per_epoch = num_examples_per_epoch / examples_per_step
  decay_steps = int(num_batches_per_epoch * NUM_EPOCHS_PER_DECAY)
  lr = tf.train.exponential_decay(INITIAL_LEARNING_RATE, global_step,
                                  decay_steps, LEARNING_RATE_DECAY_FACTOR,
                                  staircase=True)
  tf.summary.scalar('learning_rate', lr)
  return lr


def optimizer(lr):
  """The tutorial's plain gradient descent."""
  return tf.train.GradientDescentOptimizer(lr)


def apply_gradients(grads, global_step, lr, dependencies=()):
  """Applies grads, then updates the variables' moving averages.

  Returns the train op. Histograms of every variable and gradient are added.
  """
  with tf.control_dependencies(list(dependencies)):
    apply_gradient_op = optimizer(lr).apply_gradients(grads,
                                                      global_step=global_step)
  for var in tf.trainable_variables():
    tf.summary.histogram(var.op.name, var)
  for grad, var in grads:
    if grad is not None:
      tf.summary.histogram(var.op.name + '/gradients', grad)
  variable_averages = tf.train.ExponentialMovingAverage(
      MOVING_AVERAGE_DECAY, global_step)
  with tf.control_dependencies([apply_gradient_op]):
    return variable_averages.apply(tf.trainable_variables())


def train(total_loss, global_step, num_examples_per_epoch, batch_size=None):
  """Returns an op running one step of training on total_loss.

  num_examples_per_epoch and batch_size set the learning-rate schedule's
  decay steps; batch_size defaults to --batch_size.
  """
  if batch_size is None:
    batch_size = FLAGS.batch_size
  lr = learning_rate(global_step, num_examples_per_epoch, batch_size)
  loss_averages_op = add_loss_summaries(total_loss,
                                        tf.get_collection('losses'))
  with tf.control_dependencies([loss_averages_op]):
    grads = optimizer(lr).compute_gradients(total_loss)
  return apply_gradients(grads, global_step, lr)


def variables_to_restore():
  """The moving-average (shadow) values, restored into the model variables."""
  return tf.train.ExponentialMovingAverage(
      MOVING_AVERAGE_DECAY).variables_to_restore()


def _cast_for_model(images):
  return tf.cast(images, tf.float16) if FLAGS.use_fp16 else images


def distorted_inputs(batch_size=None, **kwargs):
  """Training batches from --data_dir, --batch_size, --use_fp16."""
  images, labels = cifar10_input.distorted_inputs(
      data_dir=FLAGS.data_dir, batch_size=batch_size or FLAGS.batch_size,
      **kwargs)
  return _cast_for_model(images), labels


def inputs(eval_data, **kwargs):
  """Evaluation batches from --data_dir, --batch_size, --use_fp16."""
  images, labels = cifar10_input.inputs(
      eval_data=eval_data, data_dir=FLAGS.data_dir,
      batch_size=FLAGS.batch_size, **kwargs)
  return _cast_for_model(images), labels


def _md5(path):
  digest = hashlib.md5()
  with open(path, 'rb') as f:
    for chunk in iter(lambda: f.read(1 << 20), b''):
      digest.update(chunk)
  return digest.hexdigest()


def _download(url, dest_dir, expected_md5):
  """Downloads url into dest_dir/TARBALL, verified; returns the path.

  The bytes go to a temporary file first, renamed only once complete and
  verified, so TARBALL is never a partial or corrupt file.
  """
  final = os.path.join(dest_dir, TARBALL)
  fd, part = tempfile.mkstemp(prefix=TARBALL + '.', suffix='.part',
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
              TARBALL, 100.0 * received / max(expected_size, 1)))
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
    print('Successfully downloaded %s (%d bytes).' % (TARBALL, received))
    return final
  except (IOError, OSError, ValueError) as e:
    raise DownloadError('%s: download failed: %s' % (url, getattr(e, 'reason', e)))
  finally:
    if os.path.exists(part):
      os.remove(part)


def _extract(tarball, dest_dir):
  """Unpacks BATCHES_DIR from tarball into dest_dir, all or nothing."""
  staging = tempfile.mkdtemp(prefix='.extract-', dir=dest_dir)
  try:
    try:
      with tarfile.open(tarball, 'r:gz') as tar:
        members = [m for m in tar.getmembers()
                   if m.name.split('/')[0] == cifar10_input.BATCHES_DIR]
        if not members:
          raise DownloadError('%s: holds no %s/ directory'
                              % (tarball, cifar10_input.BATCHES_DIR))
        for m in members:
          if not (m.isfile() or m.isdir()) or '..' in m.name.split('/'):
            raise DownloadError('%s: unsafe member %s' % (tarball, m.name))
        tar.extractall(staging, members)
    except (tarfile.TarError, IOError, OSError, EOFError) as e:
      raise DownloadError('%s: not a readable gzip tar file: %s' % (tarball, e))
    cifar10_input.count_examples(cifar10_input.data_files(staging, False) +
                                 cifar10_input.data_files(staging, True))
    os.rename(os.path.join(staging, cifar10_input.BATCHES_DIR),
              os.path.join(dest_dir, cifar10_input.BATCHES_DIR))
  finally:
    shutil.rmtree(staging, ignore_errors=True)


def maybe_download_and_extract(data_dir=None, url=None, expected_md5=DATA_MD5):
  """Makes sure data_dir/cifar-10-batches-bin/ exists, downloading if needed.

  Present data is left alone. A verified tarball already in data_dir is
  unpacked without downloading it again. Raises DownloadError (one line naming
  the directory, the URL and the manual way) when the data cannot be had.
  """
  data_dir = data_dir or FLAGS.data_dir
  url = url or _data_url()
  batches = os.path.join(data_dir, cifar10_input.BATCHES_DIR)
  if os.path.isdir(batches):
    return
  try:
    try:
      if not os.path.isdir(data_dir):
        os.makedirs(data_dir)
    except OSError as e:
      raise DownloadError('cannot create the directory: %s' % e.strerror)
    tarball = os.path.join(data_dir, TARBALL)
    if not (os.path.isfile(tarball) and _md5(tarball) == expected_md5):
      tarball = _download(url, data_dir, expected_md5)
    _extract(tarball, data_dir)
  except DataError as e:
    raise DownloadError(
        '--data_dir=%s has no %s/ and it could not be fetched from %s (%s); '
        'download that file by hand and unpack it into %s'
        % (data_dir, cifar10_input.BATCHES_DIR, url, e, data_dir))


def _data_url():
  if flags.FLAGS.is_parsed() and FLAGS.data_url:
    return FLAGS.data_url
  return os.environ.get('CIFAR10_DATA_URL') or DATA_URL


class UserError(Exception):
  """Something the user must fix (a flag, a directory, a checkpoint).

  Scripts print its message as one line, without a traceback, and exit 1.
  """


def read_checkpoint(path):
  """Returns {variable name: shape} of a checkpoint, after reading every value.

  Raises UserError naming the checkpoint when any of it cannot be read (a
  truncated or corrupt file), so that nobody trains or evaluates from it.
  """
  try:
    reader = tf.train.NewCheckpointReader(path)
    shapes = reader.get_variable_to_shape_map()
    for name in shapes:
      reader.get_tensor(name)
  except (tf.errors.OpError, ValueError, RuntimeError) as e:
    message = getattr(e, 'message', None) or str(e)
    raise UserError('checkpoint %s is unreadable: %s'
                    % (path, message.strip().splitlines()[0]))
  return shapes


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
