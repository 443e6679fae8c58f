"""Networks beyond the tutorial's, and the layer helpers every network shares.

The tutorial's own network stays in cifar10.py; layers.py holds what any
network builds with (variables on the CPU, weight decay, batch normalization,
summaries with exact tags).

A network's module may also give, keyed by network name, RECIPES (its
training recipe: a dict of cifar10.Recipe's fields, which cli.py takes as
the training flags' defaults) and SIGNATURES (a variable name and shape, or
None for any shape, that only that network's checkpoints hold).
"""

import importlib

# The networks beyond the tutorial's: --model name -> module under models/
# whose inference(images, num_classes, train) returns the logits, or
# 'module:builder' for a module building several networks.
NETWORKS = {
    'alexnet': 'alexnet',
    'vgg16': 'vgg16',
    'googlenet': 'googlenet',
    'resnet20': 'resnet:resnet20',
    'resnet34': 'resnet:resnet34',
    'softmax': 'softmax',
}

# The tutorial's network is recognised by local3, which any --norm and
# --top_layers build, and no other network has.
TUTORIAL = 'tutorial'
TUTORIAL_SIGNATURE = ('local3/weights', None)


def _module(name):
  module, _, builder = NETWORKS[name].partition(':')
  return importlib.import_module('cifar10lib.models.' + module), builder or 'inference'


def inference(name, images, num_classes, train=True):
  """Builds network `name` on images; returns logits [batch, num_classes]."""
  module, builder = _module(name)
  return getattr(module, builder)(images, num_classes, train)


def recipe(name):
  """Network name's training recipe (a dict of cifar10.Recipe's fields), or None."""
  module, _ = _module(name)
  return getattr(module, 'RECIPES', {}).get(name)


def identify(shapes):
  """The network whose variables {name: shape} are, or None if unknown."""
  signatures = {TUTORIAL: TUTORIAL_SIGNATURE}
  for name in NETWORKS:
    signature = getattr(_module(name)[0], 'SIGNATURES', {}).get(name)
    if signature:
      signatures[name] = signature
  for name, (variable, shape) in sorted(signatures.items()):
    if variable in shapes and (shape is None or
                               list(shapes[variable]) == list(shape)):
      return name
  # Softmax regression has no variable of its own (the tutorial's last
  # layer has the same name): it is the network whose only weights these are.
  if [n for n in shapes if n.endswith('/weights')] == ['softmax_linear/weights']:
    return 'softmax'
  return None
