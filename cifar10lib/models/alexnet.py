"""AlexNet (Krizhevsky, Sutskever and Hinton, 2012), adapted to 24x24 images.

    conv1 96 5x5/1, maxpool 3x3/2, LRN   24x24 -> 12x12
    conv2 256 5x5, maxpool 3x3/2, LRN    12x12 -> 6x6
    conv3 384 3x3, conv4 384 3x3, conv5 256 3x3, maxpool 3x3/2   -> 3x3
    fc6 4096, dropout, fc7 4096, dropout, fc8 classes

The slide's network takes 227x227 images: conv1 is 11x11 with stride 4, and
three overlapping 3x3/2 poolings bring 55x55 down to 6x6. On a 24x24 crop a
stride of 4 would leave 6x6 after conv1 alone, so conv1 is 5x5 with stride 1
(5x5: the widest that still sees a whole small feature of a 24-pixel image,
as the tutorial's conv1); the three poolings are kept and end at 3x3. All
else is the slide's: widths, LRN (the paper's k=2, n=5, alpha=1e-4, beta=0.75),
ReLU, dropout 0.5, Gaussian weights of stddev 0.01. The paper starts the
biases of conv2, conv4, conv5 and the hidden fully connected layers at 1;
then each of fc7's 4096 units outputs about 1, and the first updates of fc8
overshoot (the loss went from 2.9 to 49 in five steps of the slide's recipe
on a fixed batch): those biases start at 0.1 instead, as in Caffe's
reference AlexNet (0 elsewhere, as the paper). Convolutions are SAME-padded (the slide's pad 2 for 5x5 and pad 1
for 3x3); poolings too, so 3 -> 2 never rounds a row away.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

from cifar10lib.base.compat import tf
from cifar10lib.models import layers

# The slide's recipe: SGD with momentum 0.9, weight decay 5e-4, learning rate
# 0.01 divided by 10 when the validation error stops improving; the paper did
# that three times in 90 epochs, so here every 30 epochs.
RECIPES = {'alexnet': dict(optimizer='momentum', learning_rate=0.01,
                           momentum=0.9, num_epochs_per_decay=30.0,
                           learning_rate_decay_factor=0.1)}
WEIGHT_DECAY = 5e-4
# A variable (name, shape) only this network's checkpoints hold.
SIGNATURES = {'alexnet': ('conv1/weights', [5, 5, 3, 96])}

WEIGHT_STDDEV = 0.01
BIAS = 0.1                        # of conv2, conv4, conv5, fc6 and fc7
DROPOUT_KEEP_PROB = 0.5
FC_UNITS = 4096
LRN_DEPTH_RADIUS = 2              # n = 5 channels
LRN_BIAS = 2.0                    # k
LRN_ALPHA = 1e-4
LRN_BETA = 0.75


def _lrn(x, name):
  return tf.nn.lrn(x, LRN_DEPTH_RADIUS, bias=LRN_BIAS, alpha=LRN_ALPHA,
                   beta=LRN_BETA, name=name)


def inference(images, num_classes, train=True):
  """Returns AlexNet's logits [batch, num_classes] for images [batch, h, w, 3]."""
  def conv(x, name, filters, size, bias):
    return layers.conv(x, name, filters, size, WEIGHT_DECAY,
                       stddev=WEIGHT_STDDEV, bias=bias)

  x = conv(images, 'conv1', 96, 5, 0.0)
  x = _lrn(layers.max_pool(x, 'pool1', 3, 2), 'norm1')
  x = conv(x, 'conv2', 256, 5, BIAS)
  x = _lrn(layers.max_pool(x, 'pool2', 3, 2), 'norm2')
  x = conv(x, 'conv3', 384, 3, 0.0)
  x = conv(x, 'conv4', 384, 3, BIAS)
  x = conv(x, 'conv5', 256, 3, BIAS)
  x = layers.flatten(layers.max_pool(x, 'pool5', 3, 2))
  for name in ('fc6', 'fc7'):
    x = layers.fully_connected(x, name, FC_UNITS, WEIGHT_DECAY,
                               stddev=WEIGHT_STDDEV, bias=BIAS)
    x = layers.dropout(x, DROPOUT_KEEP_PROB, train, name + '_dropout')
  return layers.fully_connected(x, 'fc8', num_classes, WEIGHT_DECAY,
                                stddev=WEIGHT_STDDEV, relu=False)
