"""Softmax (multinomial logistic) regression: the classic MNIST baseline.

    logits = flatten(images) . W + b

on the pixels as the pipeline gives them (MNIST: 784 standardized pixels).
The weights start at zero, as in the classic formulation: the loss is
convex, so no symmetry needs breaking. No weight decay.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

from cifar10lib.base.compat import tf
from cifar10lib.models import layers


def inference(images, num_classes, train=True):
  """Returns the logits [batch, num_classes]; train changes nothing here."""
  del train
  dtype = images.dtype
  pixels = layers.flatten(images)
  with tf.variable_scope('softmax_linear') as scope:
    weights = layers.variable_on_cpu(
        'weights', [pixels.shape.as_list()[1], num_classes],
        tf.zeros_initializer(), dtype)
    biases = layers.variable_on_cpu('biases', [num_classes],
                                    tf.zeros_initializer(), dtype)
    logits = tf.add(tf.matmul(pixels, weights), biases, name=scope.name)
  layers.activation_summary(logits, 'softmax_linear')
  return logits
