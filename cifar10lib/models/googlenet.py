"""GoogLeNet (Szegedy et al., 2014), adapted to 24x24 images.

    conv1 64 3x3/1, LRN, conv2_reduce 64 1x1, conv2 192 3x3, LRN,
    maxpool 3x3/2                          24x24 -> 12x12
    inception 3a, 3b, maxpool 3x3/2        12x12 -> 6x6
    inception 4a, 4b, 4c, 4d, 4e, maxpool 3x3/2   -> 3x3
    inception 5a, 5b, global average pool, dropout 0.4, linear

Each inception module concatenates four branches: 1x1; 1x1 reduce then 3x3;
1x1 reduce then 5x5; 3x3/1 max pool then a 1x1 projection, with the paper's
filter counts (INCEPTION below), each convolution followed by ReLU.

The paper's stem (conv 7x7/2, maxpool 3x3/2, LRN, conv 1x1 and 3x3, LRN,
maxpool 3x3/2) takes 224 pixels down to 28 before inception 3a. Here conv1
is 3x3 with stride 1 and the stem's first pooling is dropped, so a 24x24
crop reaches inception 3a at 12x12; the stages then run at 12, 6 and 3
pixels (the paper's 28, 14 and 7), with every module, pooling and width
kept. The auxiliary classifiers are not built. The weights start from He
et al.'s Gaussian (the paper does not give its initialisation; without
normalization 22 layers need it to start learning).
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

from cifar10lib.base.compat import tf
from cifar10lib.models import layers

# The slide's recipe: SGD with momentum 0.9, weight decay 2e-4, learning rate
# 0.01 multiplied by 0.96 every 8 epochs.
RECIPES = {'googlenet': dict(optimizer='momentum', learning_rate=0.01,
                             momentum=0.9, num_epochs_per_decay=8.0,
                             learning_rate_decay_factor=0.96)}
WEIGHT_DECAY = 2e-4
SIGNATURES = {'googlenet': ('inception_3a/1x1/weights', None)}

# #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj (the paper's table 1).
INCEPTION = [
    ('3a', (64, 96, 128, 16, 32, 32)),
    ('3b', (128, 128, 192, 32, 96, 64)),
    ('4a', (192, 96, 208, 16, 48, 64)),
    ('4b', (160, 112, 224, 24, 64, 64)),
    ('4c', (128, 128, 256, 24, 64, 64)),
    ('4d', (112, 144, 288, 32, 64, 64)),
    ('4e', (256, 160, 320, 32, 128, 128)),
    ('5a', (256, 160, 320, 32, 128, 128)),
    ('5b', (384, 192, 384, 48, 128, 128)),
]
POOL_AFTER = ('3b', '4e')
DROPOUT_KEEP_PROB = 0.6           # the paper's dropout of 40%
LRN_DEPTH_RADIUS = 2
LRN_BIAS = 2.0
LRN_ALPHA = 1e-4
LRN_BETA = 0.75


def _lrn(x, name):
  return tf.nn.lrn(x, LRN_DEPTH_RADIUS, bias=LRN_BIAS, alpha=LRN_ALPHA,
                   beta=LRN_BETA, name=name)


def _conv(x, name, filters, size):
  # Module-internal layers get no summaries of their own: one per module.
  return layers.conv(x, name, filters, size, WEIGHT_DECAY, summary=False)


def _inception(x, name, counts):
  n1x1, n3x3_reduce, n3x3, n5x5_reduce, n5x5, pool_proj = counts
  with tf.variable_scope(name):
    branch1 = _conv(x, '1x1', n1x1, 1)
    branch3 = _conv(_conv(x, '3x3_reduce', n3x3_reduce, 1), '3x3', n3x3, 3)
    branch5 = _conv(_conv(x, '5x5_reduce', n5x5_reduce, 1), '5x5', n5x5, 5)
    pooled = layers.max_pool(x, 'pool', 3, 1)
    branch_pool = _conv(pooled, 'pool_proj', pool_proj, 1)
    out = tf.concat([branch1, branch3, branch5, branch_pool], 3)
  layers.activation_summary(out, name)
  return out


def inference(images, num_classes, train=True):
  """Returns GoogLeNet's logits [batch, num_classes] for images [batch, h, w, 3]."""
  x = layers.conv(images, 'conv1', 64, 3, WEIGHT_DECAY)
  x = _lrn(x, 'norm1')
  x = layers.conv(x, 'conv2_reduce', 64, 1, WEIGHT_DECAY)
  x = layers.conv(x, 'conv2', 192, 3, WEIGHT_DECAY)
  x = layers.max_pool(_lrn(x, 'norm2'), 'pool2', 3, 2)
  for name, counts in INCEPTION:
    x = _inception(x, 'inception_' + name, counts)
    if name in POOL_AFTER:
      x = layers.max_pool(x, 'pool_' + name, 3, 2)
  x = layers.global_average_pool(x, 'avg_pool')
  x = layers.dropout(x, DROPOUT_KEEP_PROB, train, 'dropout')
  return layers.fully_connected(x, 'linear', num_classes, WEIGHT_DECAY,
                                stddev=(1.0 / x.shape.as_list()[1]) ** 0.5,
                                relu=False)
