"""A build backend that refuses, so that `pip install -r requirements.txt`
on a Python with no supported TensorFlow fails with a message, instead of
installing everything but TensorFlow.

requirements.txt names this directory on Python 3.8 only: TensorFlow 1.15
has no wheel for it and TensorFlow 2.16 and newer need Python 3.9.
"""
import sys

MESSAGE = (
    'cifar10-tf1: Python %d.%d has no TensorFlow this project runs on: '
    'TensorFlow 1.15 needs Python 3.7, TensorFlow 2.x (2.16 or newer) Python '
    '3.9 or newer. Make the virtual environment with one of those (README.md, '
    '"Set up").' % sys.version_info[:2])


def _refuse(*args, **kwargs):
  del args, kwargs
  sys.stderr.write(MESSAGE + '\n')
  raise SystemExit(1)


get_requires_for_build_wheel = _refuse
prepare_metadata_for_build_wheel = _refuse
build_wheel = _refuse
get_requires_for_build_sdist = _refuse
build_sdist = _refuse
