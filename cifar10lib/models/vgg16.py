"""VGG-16, configuration D (Simonyan and Zisserman, 2014), for 24x24 images.

    conv1_1-1_2  64 3x3, maxpool 2x2/2   24x24 -> 12x12
    conv2_1-2_2 128 3x3, maxpool 2x2/2   12x12 -> 6x6
    conv3_1-3_3 256 3x3, maxpool 2x2/2    6x6  -> 3x3
    conv4_1-4_3 512 3x3, maxpool 2x2/2    3x3  -> 2x2
    conv5_1-5_3 512 3x3, maxpool 2x2/2    2x2  -> 1x1
    fc6 4096, dropout, fc7 4096, dropout, fc8 classes

All 13 convolutions (3x3, stride 1, pad 1), all five poolings, the widths,
ReLU, no LRN and dropout 0.5 are the slide's. On 224x224 images the five
poolings end at 7x7; on a 24x24 crop they end at 1x1 (the fourth pooling is
SAME-padded: 3x3 -> 2x2), so fc6 sees 512 values instead of 25,088 and has
2.1 M weights instead of 103 M. The weights start from He et al.'s Gaussian
(stddev sqrt(2 / fan_in)), not the slide's 0.01: the paper could only train
configuration D by initialising it from the shallower A, and from 0.01 alone
the 16 layers without normalization do not start learning.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

from cifar10lib.models import layers

# The slide's recipe: SGD with momentum 0.9, weight decay 5e-4, learning rate
# 0.01 divided by 10 when the validation accuracy stops improving (three
# times in 74 epochs in the paper), so here every 30 epochs.
RECIPES = {'vgg16': dict(optimizer='momentum', learning_rate=0.01,
                         momentum=0.9, num_epochs_per_decay=30.0,
                         learning_rate_decay_factor=0.1)}
WEIGHT_DECAY = 5e-4
SIGNATURES = {'vgg16': ('conv1_1/weights', None)}

GROUPS = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]  # (filters, convs)
DROPOUT_KEEP_PROB = 0.5
FC_UNITS = 4096


def inference(images, num_classes, train=True):
  """Returns VGG-16's logits [batch, num_classes] for images [batch, h, w, 3]."""
  x = images
  for group, (filters, convs) in enumerate(GROUPS, 1):
    for i in range(1, convs + 1):
      x = layers.conv(x, 'conv%d_%d' % (group, i), filters, 3, WEIGHT_DECAY)
    x = layers.max_pool(x, 'pool%d' % group, 2, 2)
  x = layers.flatten(x)
  for name in ('fc6', 'fc7'):
    x = layers.fully_connected(x, name, FC_UNITS, WEIGHT_DECAY)
    x = layers.dropout(x, DROPOUT_KEEP_PROB, train, name + '_dropout')
  # fc8 feeds the softmax: Glorot-sized, as a He-sized one would start with
  # needlessly large logits.
  return layers.fully_connected(x, 'fc8', num_classes, WEIGHT_DECAY,
                                stddev=(1.0 / FC_UNITS) ** 0.5, relu=False)
