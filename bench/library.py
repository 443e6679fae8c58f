"""The library's modules, found by name in the checkout under measure.

benchmark.py --repo measures another checkout, which may be older than
cifar10lib's sub-packages and hold its modules side by side
(cifar10lib/cifar10.py rather than cifar10lib/training/cifar10.py):
module('cifar10') is that checkout's module either way. The checkout must
come first on sys.path.
"""
from __future__ import absolute_import

import glob
import importlib
import os


def module(name):
  """cifar10lib's module `name` (e.g. 'cli', 'precision'), imported."""
  import cifar10lib  # pylint: disable=import-outside-toplevel
  root = os.path.dirname(os.path.abspath(cifar10lib.__file__))
  if os.path.isfile(os.path.join(root, name + '.py')):  # the flat layout
    return importlib.import_module('cifar10lib.' + name)
  found = glob.glob(os.path.join(root, '*', name + '.py'))
  if len(found) != 1:
    raise ImportError('%s holds %d modules named %s.py'
                      % (root, len(found), name))
  package = os.path.basename(os.path.dirname(found[0]))
  return importlib.import_module('cifar10lib.%s.%s' % (package, name))
