"""The fast recipes' training op: --optimizer=decoupled_nesterov.

What the whitened networks (models/whitened_cnn.py) train with, following
the published fast CIFAR-10 recipe:

  * Nesterov SGD whose rate and weight decay are given per 1,024 examples
    in decoupled form: --learning_rate (11.5) is the step size the summed
    gradient of 1,024 examples would take once momentum has built up (so
    the per-example rate is learning_rate / (1024 (1 + 1 / (1 - momentum)))),
    --weight_decay (0.0153) the fraction of each weight that 1,024 examples
    decay it by, independent of the rate;
  * batch normalization's offsets at BIAS_RATE_SCALE times that rate, the
    whitening layer's biases trained for the first WHITEN_BIAS_EPOCHS only;
  * a triangular rate: from 0.2 times the rate up to the rate at 23 % of the
    steps of --epochs, then down to 0.07 times it at the end;
  * lookahead: from epoch LOOKAHEAD_EPOCH on, every LOOKAHEAD_EVERY steps,
    each weight (and batch norm's moving statistics) is replaced by an
    exponential average of itself, decaying by 0.95^5 (step / steps)^3, so
    that it averages harder as training ends; at the last step the weights
    become that average.

cifar10.learning_rate records the plan (steps per epoch, steps in all,
examples per step) in the graph when it builds this recipe's rate, and
apply_gradients reads it: every trainer builds the rate first.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import collections
import math

from cifar10lib.base.compat import tf
from cifar10lib.base.errors import UserError
from cifar10lib.models import whitened_cnn

NAME = 'decoupled_nesterov'
KILO = 1024.0                     # the examples --learning_rate is given per
BIAS_RATE_SCALE = 64.0
WHITEN_BIAS_EPOCHS = 3.0
# The triangle: (fraction of the steps, multiplier of the rate).
TRIANGLE = ((0.0, 0.2), (0.23, 1.0), (1.0, 0.07))
LOOKAHEAD_EPOCH = 3.0
LOOKAHEAD_EVERY = 5
LOOKAHEAD_DECAY = 0.95 ** 5
PLAN_KEY = 'fast_training_plan'

Plan = collections.namedtuple('Plan', ['steps_per_epoch', 'total_steps',
                                       'examples_per_step'])


def total_steps(epochs, num_examples_per_epoch, examples_per_step):
  """The steps of `epochs` epochs, rounded up: what --max_steps defaults to."""
  return int(math.ceil(epochs * num_examples_per_epoch / examples_per_step))


def per_example_rate(learning_rate, momentum):
  """The rate for summed gradients that learning_rate per 1,024 examples is."""
  return learning_rate / (KILO * (1.0 + 1.0 / (1.0 - momentum)))


def learning_rate(global_step, num_examples_per_epoch, examples_per_step,
                  recipe):
  """The triangular rate for the gradient of a batch's mean loss.

  Records the Plan that apply_gradients reads.
  """
  if not recipe.epochs:
    raise UserError('--optimizer=%s needs --epochs' % NAME)
  steps = total_steps(recipe.epochs, num_examples_per_epoch,
                      examples_per_step)
  plan = Plan(num_examples_per_epoch / examples_per_step, steps,
              examples_per_step)
  graph = tf.get_default_graph()
  del graph.get_collection_ref(PLAN_KEY)[:]
  tf.add_to_collection(PLAN_KEY, plan)
  fractions, values = zip(*TRIANGLE)
  step = tf.cast(global_step, tf.float32)
  # Read by the network when its gradients are built: past these epochs it
  # skips the whitening biases' gradient, which would take no step anyway.
  del graph.get_collection_ref(whitened_cnn.WHITENING_BIASES_TRAIN)[:]
  tf.add_to_collection(whitened_cnn.WHITENING_BIASES_TRAIN,
                       step < WHITEN_BIAS_EPOCHS * plan.steps_per_epoch)
  points = [f * steps for f in fractions]
  multiplier = tf.where(
      step < points[1],
      values[0] + (values[1] - values[0]) * step / max(points[1], 1e-9),
      values[1] + (values[2] - values[1]) * (step - points[1]) /
      max(points[2] - points[1], 1e-9))
  multiplier = tf.clip_by_value(multiplier, min(values), max(values))
  # The mean loss's gradient is the summed one divided by the batch.
  lr = multiplier * (per_example_rate(recipe.learning_rate, recipe.momentum)
                     * examples_per_step)
  tf.summary.scalar('learning_rate', lr)
  return lr


def decay_coefficient(recipe):
  """What times a weight joins its gradient for the decoupled decay.

  The rate times it is --weight_decay per 1,024 examples, whatever the
  batch: the 1,024 and the momentum's factor cancel out.
  """
  return recipe.weight_decay / recipe.learning_rate


def _plan():
  plans = tf.get_collection(PLAN_KEY)
  if not plans:
    raise ValueError('build cifar10.learning_rate before apply_gradients')
  return plans[-1]


def _lookahead(global_step, plan, variables):
  """The op averaging variables into their lookahead copies and back."""
  step = tf.cast(global_step, tf.float32)
  steps = float(plan.total_steps)
  one, zero = tf.constant(1.0), tf.constant(0.0)
  decay = tf.where(
      step >= steps, one,
      tf.where(step < LOOKAHEAD_EPOCH * plan.steps_per_epoch, zero,
               LOOKAHEAD_DECAY * tf.pow(step / steps, 3.0)))
  due = tf.logical_or(tf.equal(global_step % LOOKAHEAD_EVERY, 0),
                      tf.equal(tf.cast(global_step, tf.int64),
                               plan.total_steps))

  averages = []
  for var in variables:
    with tf.device(var.device):
      averages.append(tf.get_variable(
          var.op.name + '/Lookahead', initializer=var.initialized_value(),
          trainable=False))

  def update():
    # Built inside the branch, so that it runs only when due.
    ops = []
    for var, average in zip(variables, averages):
      d = tf.cast(decay, var.dtype.base_dtype)
      new = d * average + (1.0 - d) * var
      with tf.control_dependencies([tf.assign(average, new)]):
        ops.append(tf.assign(var, average.read_value()))
    return tf.group(*ops)

  return tf.cond(due, update, tf.no_op)


def apply_gradients(grads, global_step, lr, recipe, dependencies=(),
                    make_sync_optimizer=None):
  """Applies grads the recipe's way; returns the train op."""
  if make_sync_optimizer is not None:
    raise UserError('--optimizer=%s does not run with --sync_replicas' % NAME)
  plan = _plan()
  bn_biases = set(tf.get_collection(whitened_cnn.BATCH_NORM_BIASES))
  whiten_biases = set(tf.get_collection(whitened_cnn.WHITENING_BIASES))
  coefficient = decay_coefficient(recipe)
  epoch = tf.cast(global_step, tf.float32) / plan.steps_per_epoch
  whiten_on = tf.cast(epoch < WHITEN_BIAS_EPOCHS, tf.float32)
  groups = {'bn': ([], lr * BIAS_RATE_SCALE, coefficient / BIAS_RATE_SCALE),
            'whiten': ([], lr * whiten_on, coefficient),
            'other': ([], lr, coefficient)}
  for grad, var in grads:
    if grad is None:
      continue
    group = ('bn' if var in bn_biases else
             'whiten' if var in whiten_biases else 'other')
    pairs, _, c = groups[group]
    pairs.append((grad + c * tf.cast(var, grad.dtype), var))
  ops = []
  with tf.control_dependencies(list(dependencies)):
    for name in sorted(groups):
      pairs, rate, _ = groups[name]
      if pairs:
        opt = tf.train.MomentumOptimizer(rate, recipe.momentum,
                                         use_nesterov=True,
                                         name='Nesterov_' + name)
        ops.append(opt.apply_gradients(pairs))
  with tf.control_dependencies(ops):
    step_op = tf.assign_add(global_step, 1)
  trainable = set(tf.trainable_variables())
  averaged = [v for v in tf.global_variables()
              if v in trainable or
              v.op.name.endswith(('moving_mean', 'moving_variance'))]
  with tf.control_dependencies([step_op]):
    return _lookahead(step_op, plan, averaged)
