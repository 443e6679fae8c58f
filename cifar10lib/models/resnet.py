"""Residual networks (He et al.): ResNet-20 for CIFAR and ResNet-34.

Both are stacks of basic blocks (two 3x3 convolutions, each followed by
batch normalization, ReLU after the first and after the sum with the
shortcut), He et al.'s initialisation, no dropout, a global average pool and
one fully connected layer. A stage's first block halves the size with
stride 2 (except the first stage's).

resnet20: the CIFAR network of "Deep Residual Learning" (2016), section 4.2:
conv 16 3x3, three stages of 3 blocks at 16, 32 and 64 filters, with the
parameter-free shortcuts of that section (option A: subsampled identity,
zero-padded to the new width) -- 0.27 M parameters. Built as the paper,
except that its 32x32 images are 24x24 crops here (stages at 24, 12, 6).

resnet34: the ImageNet network of the slide: blocks [3, 4, 6, 3] at 64, 128,
256 and 512 filters, projection shortcuts (1x1 convolution with stride 2
and batch normalization) where the size changes. Its stem (conv 7x7/2, then
maxpool 3x3/2) takes 224 pixels to 56; on a 24x24 crop it would leave 6x6
before the first block and 1x1 at the last stage, so the stem is one 3x3
convolution with stride 1 and no pooling: the stages run at 24, 12, 6 and 3
pixels (the paper's 56, 28, 14 and 7).
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

from cifar10lib.base.compat import tf
from cifar10lib.models import layers

# The slide's recipe: SGD with momentum 0.9, learning rate 0.1 divided by 10
# when the error plateaus; the CIFAR paper divided it at 32k and 48k steps of
# 128 images (epochs 82 and 123 of 50,000 images), so here every 80 epochs.
_RECIPE = dict(optimizer='momentum', learning_rate=0.1, momentum=0.9,
               num_epochs_per_decay=80.0, learning_rate_decay_factor=0.1)
RECIPES = {'resnet20': _RECIPE, 'resnet34': _RECIPE}
# The ResNet paper's 1e-4 (for both its CIFAR and ImageNet networks), not the
# slide's 1e-5, which led by 1.2 points after 10 epochs only (docs/networks.md).
WEIGHT_DECAY = 1e-4
SIGNATURES = {'resnet20': ('stage3/block1/conv1/weights', [3, 3, 32, 64]),
              'resnet34': ('stage4/block1/shortcut/weights', None)}

# (stem filters, [(filters, blocks) per stage], projection shortcuts)
NETWORKS = {
    'resnet20': (16, [(16, 3), (32, 3), (64, 3)], False),
    'resnet34': (64, [(64, 3), (128, 4), (256, 6), (512, 3)], True),
}


def _shortcut(x, filters, stride, train, projection):
  in_filters = x.shape.as_list()[-1]
  if stride == 1 and in_filters == filters:
    return x
  if projection:
    return layers.conv_bn(x, 'shortcut', filters, 1, WEIGHT_DECAY, train,
                          stride, relu=False)
  # Option A: every other pixel, the new channels zero.
  x = x[:, ::stride, ::stride, :]
  extra = filters - in_filters
  return tf.pad(x, [[0, 0], [0, 0], [0, 0], [extra // 2, extra - extra // 2]])


def _block(x, name, filters, stride, train, projection):
  with tf.variable_scope(name):
    out = layers.conv_bn(x, 'conv1', filters, 3, WEIGHT_DECAY, train, stride)
    out = layers.conv_bn(out, 'conv2', filters, 3, WEIGHT_DECAY, train,
                         relu=False)
    out = tf.nn.relu(out + _shortcut(x, filters, stride, train, projection))
  return out


def _resnet(network, images, num_classes, train):
  stem, stages, projection = NETWORKS[network]
  x = layers.conv_bn(images, 'conv1', stem, 3, WEIGHT_DECAY, train)
  layers.activation_summary(x, 'conv1')
  for s, (filters, blocks) in enumerate(stages, 1):
    for b in range(1, blocks + 1):
      stride = 2 if s > 1 and b == 1 else 1
      x = _block(x, 'stage%d/block%d' % (s, b), filters, stride, train,
                 projection)
    layers.activation_summary(x, 'stage%d' % s)
  x = layers.global_average_pool(x, 'avg_pool')
  return layers.fully_connected(x, 'fc', num_classes, WEIGHT_DECAY,
                                stddev=(1.0 / x.shape.as_list()[1]) ** 0.5,
                                relu=False)


def resnet20(images, num_classes, train=True):
  """Returns ResNet-20's logits [batch, num_classes]."""
  return _resnet('resnet20', images, num_classes, train)


def resnet34(images, num_classes, train=True):
  """Returns ResNet-34's logits [batch, num_classes]."""
  return _resnet('resnet34', images, num_classes, train)
