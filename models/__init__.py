"""Networks beyond the tutorial's, and the layer helpers every network shares.

The tutorial's own network stays in cifar10.py; layers.py holds what any
network builds with (variables on the CPU, weight decay, batch normalization,
summaries with exact tags).
"""

import importlib

# The networks beyond the tutorial's: --model name -> module under models/
# whose inference(images, num_classes, train) returns the logits.
NETWORKS = {
    'softmax': 'softmax',
}


def inference(name, images, num_classes, train=True):
  """Builds network `name` on images; returns logits [batch, num_classes]."""
  module = importlib.import_module('models.' + NETWORKS[name])
  return module.inference(images, num_classes, train)
