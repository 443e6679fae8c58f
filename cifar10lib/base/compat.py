"""TensorFlow's 1.x graph API, the same on TensorFlow 1.15 and 2.x.

Every module takes `tf` from here: `tensorflow.compat.v1` with the v2
behaviour (eager execution, resource variables, ...) switched off, which the
queue-based input pipelines and graph-mode sessions need on TensorFlow 2.x.

This is the one place that imports TensorFlow, so it is also where its
start-up chatter is quieted (unless --verbose is on the command line) and
where Ctrl-C during that slow import ends the process without a traceback.
Whatever imports the library first, the import happens here, in this order.
"""
import os
import signal
import sys
import warnings

from cifar10lib.base import script_help

# The shell's status for a process ended by SIGINT (128 + 2).
INTERRUPTED_STATUS = 128 + signal.SIGINT


def _exit_interrupted(signum, frame):
  """Ctrl-C while TensorFlow loads: nothing has started, so leave quietly."""
  del signum, frame
  os._exit(INTERRUPTED_STATUS)  # pylint: disable=protected-access


# Installed before the slow TensorFlow import, so Ctrl-C there prints no
# traceback; Python's own handler comes back once the imports are done. A
# SIGINT ignored from the start (a background job of a script) stays so.
_SIGINT_DEFAULT = signal.getsignal(signal.SIGINT) is signal.default_int_handler
if _SIGINT_DEFAULT:
  signal.signal(signal.SIGINT, _exit_interrupted)

# TensorFlow's C++ logging reads this once, at import time, so it is decided
# from the raw command line: quiet unless --verbose or the user's own setting.
VERBOSE = any(arg in ('--verbose', '--verbose=true', '--verbose=1')
              for arg in sys.argv[1:])


def _import_tensorflow_quietly():
  """Imports TensorFlow with its start-up chatter (CUDA probing) hidden.

  Current TensorFlow writes some of it to file descriptor 2 before its log
  level applies, so stderr is pointed at /dev/null for the import alone. An
  import error still raises, and its traceback prints once stderr is back.
  """
  if VERBOSE:
    import tensorflow.compat.v1  # pylint: disable=unused-import
    return
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
  warnings.filterwarnings('ignore', category=FutureWarning)
  warnings.filterwarnings('ignore', category=DeprecationWarning)
  sys.stderr.flush()
  saved = os.dup(2)
  devnull = os.open(os.devnull, os.O_WRONLY)
  os.dup2(devnull, 2)
  try:
    import tensorflow.compat.v1 as tf_v1
  finally:
    os.dup2(saved, 2)
    os.close(saved)
    os.close(devnull)
  tf_v1.get_logger().setLevel('ERROR')


class _StandIn(object):
  """Stands in for TensorFlow in a process that only prints a script's help.

  Every attribute, call and class base made of it is another stand-in or a
  plain object: the library's modules load and define their flags, whose
  defaults never come from TensorFlow, and nothing of it ever runs.
  """

  def __init__(self, name):
    self._name = name

  def __getattr__(self, attr):
    return _StandIn(self._name + '.' + attr)

  def __call__(self, *args, **kwargs):
    return _StandIn(self._name + '()')

  def __mro_entries__(self, bases):  # a class deriving from a TF class
    return (object,)

  def __repr__(self):
    return '<stand-in for %s>' % self._name


# `python SCRIPT --help` prints help and exits (cli.run) before anything
# would use TensorFlow: it is not imported, which takes seconds.
HELP_ONLY = script_help.requested(sys.argv[1:])
if HELP_ONLY:
  tf = _StandIn('tf')
else:
  _import_tensorflow_quietly()
  import tensorflow.compat.v1 as tf  # pylint: disable=wrong-import-position

if _SIGINT_DEFAULT:
  signal.signal(signal.SIGINT, signal.default_int_handler)

tf.disable_v2_behavior()
