"""The CIFAR-10 model of the TensorFlow tutorial: its network and training ops.

    images, labels = distorted_inputs()          # or inputs(eval_data) to evaluate
    logits = inference(images)
    total_loss = loss(logits, labels)
    train_op = train(total_loss, global_step, num_examples_per_epoch)

Every function takes its options as arguments, whose defaults are the
tutorial's; the scripts pass the command line's (cli.py). Variables are
named as in the original tutorial (conv1/weights, ..., softmax_linear/biases),
so its checkpoints and ours are interchangeable.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import collections
import re

from cifar10lib import models
from cifar10lib.base.compat import tf
from cifar10lib.data import cifar10_input
from cifar10lib.data import datasets
from cifar10lib.data.download import (  # pylint: disable=unused-import
    maybe_download_and_extract)
from cifar10lib.models import layers
from cifar10lib.models import whitened_cnn
from cifar10lib.training import fast_training
from cifar10lib.training import precision as precision_lib
from cifar10lib.training import schedules

# The tutorial's model hyper-parameters.
BATCH_SIZE = 128
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
CONV_SIZE = 5                     # conv1 and conv2: 5x5 filters
CONV_DEPTH = 64                   # ... 64 of them each
CONV1_BIAS = 0.0
CONV2_BIAS = 0.1
LOCAL_BIAS = 0.1                  # of local3 and local4
SOFTMAX_BIAS = 0.0
LOCAL3_UNITS = 384
LOCAL4_UNITS = 192
NUM_CLASSES = datasets.NUM_CLASSES
TOWER_NAME = 'tower'

# Beyond the tutorial: the defaults below give back the tutorial's model and
# training exactly.
MODEL = 'tutorial'                # the network: the tutorial's, or models/'s
OPTIMIZER = 'sgd'
# --optimizer's choices: name -> constructor(learning rate, Recipe). The
# adaptive ones keep TensorFlow's defaults for everything but the rate.
OPTIMIZERS = collections.OrderedDict([
    ('sgd', lambda lr, recipe: tf.train.GradientDescentOptimizer(lr)),
    ('momentum', lambda lr, recipe: tf.train.MomentumOptimizer(
        lr, recipe.momentum)),
    ('nesterov', lambda lr, recipe: tf.train.MomentumOptimizer(
        lr, recipe.momentum, use_nesterov=True)),
    ('adagrad', lambda lr, recipe: tf.train.AdagradOptimizer(lr)),
    ('rmsprop', lambda lr, recipe: tf.train.RMSPropOptimizer(lr)),
    ('adam', lambda lr, recipe: tf.train.AdamOptimizer(lr)),
    # Its own update is fast_training's; this one computes its gradients.
    (fast_training.NAME, lambda lr, recipe: tf.train.MomentumOptimizer(
        lr, recipe.momentum, use_nesterov=True)),
])
MOMENTUM = 0.9                    # of the momentum and nesterov optimizers
DROPOUT_KEEP_PROB = 1.0           # on local3 and local4, in training only
NORM = 'lrn'
NORMS = ('lrn', 'batch_norm', 'none')
TOP_LAYERS = 'fully_connected'
TOP_LAYER_KINDS = ('fully_connected', 'locally_connected')
# cuda-convnet's locally connected variant of local3 and local4: each output
# position has its own 3x3 filters over the previous map.
LOCALLY_CONNECTED_SIZE = 3
LOCALLY_CONNECTED_DEPTH = 32


class Recipe(collections.namedtuple('Recipe', [
    'optimizer', 'learning_rate', 'momentum', 'num_epochs_per_decay',
    'learning_rate_decay_factor', 'epochs', 'weight_decay'],
    defaults=(None, None))):
  """How the weights are trained: the algorithm and its rate schedule.

  epochs and weight_decay belong to --optimizer=decoupled_nesterov
  (fast_training.py), whose triangular schedule spans epochs.
  """


TUTORIAL_RECIPE = Recipe(OPTIMIZER, INITIAL_LEARNING_RATE, MOMENTUM,
                         NUM_EPOCHS_PER_DECAY, LEARNING_RATE_DECAY_FACTOR)


def _conv_relu(images, name, in_depth, bias_init, dtype, norm='lrn',
               train=True):
  with tf.variable_scope(name) as scope:
    kernel = layers.variable_with_weight_decay(
        'weights', [CONV_SIZE, CONV_SIZE, in_depth, CONV_DEPTH],
        CONV_WEIGHT_STDDEV, None, dtype)
    conv = tf.nn.conv2d(images, kernel, [1, 1, 1, 1], padding='SAME')
    if norm == 'batch_norm':
      # Its offset beta does the biases' work.
      pre_activation = layers.batch_norm(conv, [0, 1, 2], train, dtype)
    else:
      biases = layers.variable_on_cpu('biases', [CONV_DEPTH],
                                      tf.constant_initializer(bias_init), dtype)
      pre_activation = tf.nn.bias_add(conv, biases)
    out = tf.nn.relu(pre_activation, name=scope.name)
  layers.activation_summary(out, name)
  return out


def _fully_connected(x, units, dtype):
  """x [batch, n] times weights [n, units]."""
  weights = layers.variable_with_weight_decay(
      'weights', [x.shape.as_list()[1], units],
      LOCAL_WEIGHT_STDDEV, LOCAL_WEIGHT_DECAY, dtype)
  return tf.matmul(x, weights)


def _local_relu(x, name, units, dtype, norm='lrn', train=True,
                top_layers='fully_connected', keep_prob=1.0):
  """local3 or local4: fully or locally connected, then ReLU and dropout."""
  with tf.variable_scope(name) as scope:
    if top_layers == 'locally_connected':
      out = layers.locally_connected(
          x, LOCALLY_CONNECTED_DEPTH, LOCALLY_CONNECTED_SIZE,
          LOCAL_WEIGHT_STDDEV, LOCAL_WEIGHT_DECAY, dtype)
    else:
      out = _fully_connected(x, units, dtype)
    if norm == 'batch_norm':
      out = layers.batch_norm(out, [0], train, dtype)
    else:
      biases = layers.variable_on_cpu('biases', out.shape.as_list()[1:],
                                      tf.constant_initializer(LOCAL_BIAS),
                                      dtype)
      out = out + biases
    out = tf.nn.relu(out, name=scope.name)
  layers.activation_summary(out, name)
  if train and keep_prob < 1.0:
    out = tf.nn.dropout(out, rate=1.0 - keep_prob, name=name + '_dropout')
  return out


def _pool(x, name):
  return tf.nn.max_pool(x, ksize=[1, 3, 3, 1], strides=[1, 2, 2, 1],
                        padding='SAME', name=name)


def _lrn(x, name):
  return tf.nn.lrn(x, LRN_DEPTH_RADIUS, bias=LRN_BIAS, alpha=LRN_ALPHA,
                   beta=LRN_BETA, name=name)


def inference(images, train=True, norm=NORM, top_layers=TOP_LAYERS,
              dropout_keep_prob=DROPOUT_KEEP_PROB, num_classes=NUM_CLASSES,
              model=MODEL):
  """Builds the tutorial's network; returns unnormalized logits [batch, classes].

  The variables take the dtype of `images` (float16 with --use_fp16).
  train=False builds it for evaluation: no dropout, and batch normalization
  with its moving statistics. The defaults of norm, top_layers and
  dropout_keep_prob build the tutorial's graph. Another model (a name in
  models.NETWORKS) builds that network instead, which ignores them.
  """
  if model != MODEL:
    return models.inference(model, images, num_classes, train)
  dtype = images.dtype
  keep_prob = dropout_keep_prob
  # 3 channels for CIFAR, 1 for MNIST's grey digits.
  depth = images.shape.as_list()[-1]
  conv1 = _conv_relu(images, 'conv1', depth, CONV1_BIAS, dtype, norm, train)
  pool1 = _pool(conv1, 'pool1')
  norm1 = _lrn(pool1, 'norm1') if norm == 'lrn' else pool1
  conv2 = _conv_relu(norm1, 'conv2', CONV_DEPTH, CONV2_BIAS, dtype, norm,
                     train)
  norm2 = _lrn(conv2, 'norm2') if norm == 'lrn' else conv2
  pool2 = _pool(norm2, 'pool2')
  if top_layers == 'fully_connected':
    pool2 = layers.flatten(pool2)
  local3 = _local_relu(pool2, 'local3', LOCAL3_UNITS, dtype, norm, train,
                       top_layers, keep_prob)
  local4 = _local_relu(local3, 'local4', LOCAL4_UNITS, dtype, norm, train,
                       top_layers, keep_prob)
  if top_layers == 'locally_connected':
    local4 = layers.flatten(local4)
  # The softmax is folded into the loss (sparse_softmax_cross_entropy_with_logits
  # takes unnormalized logits and is more stable).
  with tf.variable_scope('softmax_linear') as scope:
    dim = local4.shape.as_list()[1]
    weights = layers.variable_with_weight_decay(
        'weights', [dim, num_classes], 1.0 / dim, None, dtype)
    biases = layers.variable_on_cpu('biases', [num_classes],
                                    tf.constant_initializer(SOFTMAX_BIAS),
                                    dtype)
    softmax_linear = tf.add(tf.matmul(local4, weights), biases, name=scope.name)
  layers.activation_summary(softmax_linear, 'softmax_linear')
  return softmax_linear



def loss(logits, labels, scope=None):
  """Mean cross-entropy plus every weight-decay term; returns `total_loss`.

  `scope` restricts the `losses` collection to one tower's terms.
  """
  labels = tf.cast(labels, tf.int64)
  smoothing = tf.get_collection(whitened_cnn.LABEL_SMOOTHING_KEY)
  if smoothing:
    # The network asked for smoothed targets: (1 - s) on the label, s spread
    # evenly over every class.
    classes = logits.shape.as_list()[-1]
    targets = (tf.one_hot(labels, classes) * (1.0 - smoothing[0]) +
               smoothing[0] / classes)
    cross_entropy = tf.reduce_sum(
        -targets * tf.nn.log_softmax(tf.cast(logits, tf.float32)), 1,
        name='cross_entropy_per_example')
  else:
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
      layers.scalar_summary(name + ' (raw)', l)
      # Unordered, the read would race the update and show either value.
      with tf.control_dependencies([loss_averages_op]):
        layers.scalar_summary(name, tf.identity(loss_averages.average(l)))
  return loss_averages_op


def learning_rate(global_step, num_examples_per_epoch, examples_per_step,
                  recipe=TUTORIAL_RECIPE, schedule=None):
  """The tutorial's staircase schedule: 0.1, times 0.1 every 350 epochs.

  schedule (a schedules.Schedule; None is the tutorial's) may name another
  (schedules.learning_rate).
  """
  if recipe.optimizer == fast_training.NAME:
    return fast_training.learning_rate(global_step, num_examples_per_epoch,
                                       examples_per_step, recipe)
  lr = schedules.learning_rate(
      global_step, num_examples_per_epoch / examples_per_step, recipe,
      schedule or schedules.TUTORIAL_SCHEDULE)
  tf.summary.scalar('learning_rate', lr)
  return lr


def optimizer(lr, recipe=TUTORIAL_RECIPE, loss_scale=None):
  """The training algorithm (OPTIMIZERS), by default the tutorial's
  gradient descent. loss_scale (precision.loss_scale's, for float16) wraps
  it in loss scaling.
  """
  opt = OPTIMIZERS[recipe.optimizer](lr, recipe)
  return precision_lib.scaled_optimizer(opt, loss_scale)


def apply_gradients(grads, global_step, lr, recipe=TUTORIAL_RECIPE,
                    dependencies=(), make_sync_optimizer=None,
                    loss_scale=None):
  """Applies grads, then updates the variables' moving averages.

  Returns the train op. Histograms of every variable and gradient are added.
  make_sync_optimizer(optimizer, variable_averages), when given, wraps the
  optimizer in one that aggregates several workers' gradients (a
  SyncReplicasOptimizer) and updates the averages once per aggregated update.
  loss_scale: the one the gradients were computed with (see optimizer).
  """
  if recipe.optimizer == fast_training.NAME:
    return fast_training.apply_gradients(grads, global_step, lr, recipe,
                                         dependencies, make_sync_optimizer)
  opt = optimizer(lr, recipe, loss_scale)
  if make_sync_optimizer is not None:
    opt = make_sync_optimizer(opt, tf.train.ExponentialMovingAverage(
        MOVING_AVERAGE_DECAY, global_step))
  with tf.control_dependencies(list(dependencies)):
    apply_gradient_op = opt.apply_gradients(grads, global_step=global_step)
  for var in tf.trainable_variables():
    layers.histogram_summary(var.op.name, var)
  for grad, var in grads:
    if grad is not None:
      layers.histogram_summary(var.op.name + '/gradients', grad)
  if make_sync_optimizer is not None:
    return apply_gradient_op
  variable_averages = tf.train.ExponentialMovingAverage(
      MOVING_AVERAGE_DECAY, global_step)
  with tf.control_dependencies([apply_gradient_op]):
    return variable_averages.apply(tf.trainable_variables())


def train(total_loss, global_step, num_examples_per_epoch,
          batch_size=BATCH_SIZE, recipe=TUTORIAL_RECIPE,
          make_sync_optimizer=None, precision=precision_lib.DEFAULT,
          schedule=None):
  """Returns an op running one step of training on total_loss.

  num_examples_per_epoch and batch_size set the learning-rate schedule's
  decay steps; schedule: see learning_rate. make_sync_optimizer: see
  apply_gradients. precision (see precision.py) adds loss scaling under
  float16; the session's ConfigProto (precision.configure) does the rest.
  """
  lr = learning_rate(global_step, num_examples_per_epoch, batch_size, recipe,
                     schedule)
  loss_averages_op = add_loss_summaries(total_loss,
                                        tf.get_collection('losses'))
  scale = precision_lib.loss_scale(precision)
  with tf.control_dependencies([loss_averages_op]):
    grads = optimizer(lr, recipe, scale).compute_gradients(total_loss)
  # Batch normalization's moving statistics follow the batches trained on.
  return apply_gradients(grads, global_step, lr, recipe,
                         dependencies=tf.get_collection(
                             tf.GraphKeys.UPDATE_OPS),
                         make_sync_optimizer=make_sync_optimizer,
                         loss_scale=scale)


def variables_to_restore():
  """The moving-average (shadow) values, restored into the model variables."""
  return tf.train.ExponentialMovingAverage(
      MOVING_AVERAGE_DECAY).variables_to_restore()


def _cast_for_model(images, use_fp16):
  return tf.cast(images, tf.float16) if use_fp16 else images


def distorted_inputs(data_dir=datasets.DATA_DIR, batch_size=BATCH_SIZE,
                     use_fp16=False, split=None, **kwargs):
  """Training batches of data_dir's training split (cifar10_input's).

  split (a datasets.Split, default: all of data_dir's CIFAR-10 training
  records) says which records; keyword arguments go to
  cifar10_input.distorted_inputs.
  """
  split = split or datasets.split(data_dir, 'train')
  kwargs.setdefault('num_examples_per_epoch', split.num_examples)
  images, labels = cifar10_input.distorted_inputs(
      data_dir=data_dir, batch_size=batch_size, filenames=split.filenames,
      records=split.records, ds=split.ds, **kwargs)
  return _cast_for_model(images, use_fp16), labels


def inputs(eval_data, data_dir=datasets.DATA_DIR, batch_size=BATCH_SIZE,
           use_fp16=False, split=None, **kwargs):
  """Evaluation batches from data_dir (cifar10_input's).

  eval_data: True or 'test' for the test file, False or 'train_eval' for the
  training split; split (a datasets.Split) names other records, such as the
  validation hold-out. Keyword arguments go to cifar10_input.inputs.
  """
  name = {True: 'test', False: 'train_eval'}.get(eval_data, eval_data)
  split = split or datasets.split(data_dir, name)
  images, labels = cifar10_input.inputs(
      eval_data=name == 'test', data_dir=data_dir, batch_size=batch_size,
      filenames=split.filenames, records=split.records, ds=split.ds, **kwargs)
  return _cast_for_model(images, use_fp16), labels
