"""requirements.txt: every Python from 3.7 to 3.13 gets exactly one
TensorFlow, or (3.8, which none supports) the guard whose build stops the
installation with a message. Read with `packaging`, as pip reads markers.
"""
import os
import sys

import pytest
from packaging.markers import Marker

from conftest import REPO

GUARD = './requirements-guard'


def _requirements():
  """[(requirement, Marker or None)] of requirements.txt's lines."""
  out = []
  with open(os.path.join(REPO, 'requirements.txt')) as f:
    for line in f:
      line = line.split('#')[0].strip()
      if line:
        requirement, _, marker = line.partition(';')
        out.append((requirement.strip(),
                    Marker(marker.strip()) if marker.strip() else None))
  return out


def _installed_on(version):
  env = {'python_version': version, 'python_full_version': version + '.0'}
  return [req for req, marker in _requirements()
          if marker is None or marker.evaluate(env)]


@pytest.mark.parametrize('minor', range(7, 14))
def test_each_python_gets_one_tensorflow_or_the_guard(minor):
  installed = _installed_on('3.%d' % minor)
  tensorflows = [r for r in installed if r.startswith('tensorflow')
                 and not r.startswith('tensorflow-estimator')
                 and not r.startswith('tensorboard')]
  if minor == 8:
    assert tensorflows == [] and GUARD in installed
  else:
    assert len(tensorflows) == 1 and GUARD not in installed, installed
  expected = 'tensorflow-gpu==1.15.5' if minor == 7 else 'tensorflow>=2.16,<3'
  if minor != 8:
    assert tensorflows == [expected]


def test_guard_build_refuses_with_a_message(capsys, monkeypatch):
  monkeypatch.syspath_prepend(os.path.join(REPO, 'requirements-guard'))
  import unsupported_python  # pylint: disable=import-outside-toplevel
  with pytest.raises(SystemExit) as info:
    unsupported_python.get_requires_for_build_wheel()
  assert info.value.code == 1
  err = capsys.readouterr().err
  assert err.startswith('cifar10-tf1: Python %d.%d has no TensorFlow this '
                        'project runs on' % sys.version_info[:2])
  assert 'Python 3.7' in err and '3.9 or newer' in err
