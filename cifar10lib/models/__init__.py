"""Networks beyond the tutorial's, and the layer helpers every network shares.
May import: base, data (a network that initialises from the data reads it).

The tutorial's own network stays in cifar10.py; layers.py holds what any
network builds with (variables on the CPU, weight decay, batch normalization,
summaries with exact tags).

A network's module may also give, keyed by network name, RECIPES (its
training recipe: a dict of cifar10.Recipe's fields, which config.py takes
as the training flags' defaults), SIGNATURES (a variable name and shape, or
None for any shape, that only that network's checkpoints hold), FLAG_DEFAULTS
(other flags' defaults for it: batch size, preprocessing, augmentation, ...)
and prepare(split, preprocessing_mode), which trainers call before building
it for training when it initialises weights from the data.
"""

import collections

from cifar10lib.models import alexnet
from cifar10lib.models import googlenet
from cifar10lib.models import resnet
from cifar10lib.models import softmax
from cifar10lib.models import vgg16
from cifar10lib.models import whitened_cnn


class Network(collections.namedtuple('Network', [
    'build', 'recipe', 'signature', 'flag_defaults', 'prepare'])):
  """build(images, num_classes, train) returns the logits; recipe,
  signature and flag_defaults: the module's RECIPES, SIGNATURES and
  FLAG_DEFAULTS entries, or None; prepare: the module's, or None."""


def _network(module, name, build=None):
  return Network(build or module.inference,
                 getattr(module, 'RECIPES', {}).get(name),
                 getattr(module, 'SIGNATURES', {}).get(name),
                 getattr(module, 'FLAG_DEFAULTS', {}).get(name),
                 getattr(module, 'prepare', None))


# The networks beyond the tutorial's: --model name -> Network. A new network
# is a module here and one entry.
NETWORKS = collections.OrderedDict([
    ('alexnet', _network(alexnet, 'alexnet')),
    ('vgg16', _network(vgg16, 'vgg16')),
    ('googlenet', _network(googlenet, 'googlenet')),
    ('resnet20', _network(resnet, 'resnet20', resnet.resnet20)),
    ('resnet34', _network(resnet, 'resnet34', resnet.resnet34)),
    ('softmax', _network(softmax, 'softmax')),
    ('whitened_cnn', _network(whitened_cnn, 'whitened_cnn',
                              whitened_cnn.whitened_cnn)),
    ('whitened_cnn_wide', _network(whitened_cnn, 'whitened_cnn_wide',
                                   whitened_cnn.whitened_cnn_wide)),
])

# The tutorial's network is recognised by local3, which any --norm and
# --top_layers build, and no other network has.
TUTORIAL = 'tutorial'
TUTORIAL_SIGNATURE = ('local3/weights', None)


def inference(name, images, num_classes, train=True):
  """Builds network `name` on images; returns logits [batch, num_classes]."""
  return NETWORKS[name].build(images, num_classes, train)


def recipe(name):
  """Network name's training recipe (a dict of cifar10.Recipe's fields), or None."""
  return NETWORKS[name].recipe


def flag_defaults(name):
  """{flag: default} that network name brings (its FLAG_DEFAULTS)."""
  return dict(NETWORKS[name].flag_defaults or {}) if name in NETWORKS else {}


def prepare(name, split, preprocessing_mode):
  """Lets network name read split's training data, if it needs to."""
  if name in NETWORKS and NETWORKS[name].prepare:
    NETWORKS[name].prepare(split, preprocessing_mode)


def identify(shapes):
  """The network whose variables {name: shape} are, or None if unknown."""
  signatures = {TUTORIAL: TUTORIAL_SIGNATURE}
  for name, network in NETWORKS.items():
    if network.signature:
      signatures[name] = network.signature
  for name, (variable, shape) in sorted(signatures.items()):
    if variable in shapes and (shape is None or
                               list(shapes[variable]) == list(shape)):
      return name
  # Softmax regression has no variable of its own (the tutorial's last
  # layer has the same name): it is the network whose only weights these are.
  if [n for n in shapes if n.endswith('/weights')] == ['softmax_linear/weights']:
    return 'softmax'
  return None
