"""What the export tests share: a loader that knows only TensorFlow, the
classifier's printed probabilities, and the interpreters of both runtimes.

LOADER is a program of its own: it imports tensorflow and numpy only, runs
in a fresh interpreter outside the repository, loads each SavedModel given
to it with the runtime's own API (tf.saved_model.load on TensorFlow 2.x,
the compat.v1 loader on 1.15) and writes what both signatures return.
"""
import glob
import hashlib
import os
import re
import subprocess
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# cifar10_classify.py prints probabilities to 3 decimals: the printed value
# is within half of the last digit of the exact one (plus float32's error).
PRINTED_TOLERANCE = 0.0005 + 1e-6
# Two graphs of the same weights on the same pixels (another runtime, the
# other signature, saved_model_cli): float32's rounding only.
SAME_TOLERANCE = 1e-5

LOADER = r'''
import json, sys
import numpy as np
import tensorflow as tf

images_path, paths_file, out_path = sys.argv[1:4]
images = np.load(images_path)
with open(paths_file) as f:
  encoded = [open(p, 'rb').read() for p in json.load(f)]
results = {}
for n, export_dir in enumerate(sys.argv[4:]):
  calls = [('serving_default', 'images', images),
           ('serving_bytes', 'image_bytes', encoded)]
  if tf.__version__.startswith('1.'):
    with tf.compat.v1.Session(graph=tf.Graph()) as sess:
      meta = tf.compat.v1.saved_model.loader.load(sess, ['serve'], export_dir)
      for name, key, value in calls:
        signature = meta.signature_def[name]
        results.update(('%d/%s/%s' % (n, name, k), v) for k, v in sess.run(
            {k: t.name for k, t in signature.outputs.items()},
            {signature.inputs[key].name: value}).items())
  else:
    model = tf.saved_model.load(export_dir)
    for name, key, value in calls:
      out = model.signatures[name](**{key: tf.constant(value)})
      results.update(('%d/%s/%s' % (n, name, k), v.numpy())
                     for k, v in out.items())
results = {k: v.astype(str) if v.dtype == object else v
           for k, v in results.items()}
assert not [m for m in sys.modules if m.startswith('cifar10')], 'project code'
np.savez(out_path, **results)
print('loaded with TensorFlow', tf.__version__)
'''


def load_elsewhere(python, tmp_path, export_dirs, images, paths):
  """LOADER's results, run by python in tmp_path: [{signature: {output:
  value}}] for each export dir."""
  work = tmp_path / ('loader-%d' % len(list(tmp_path.glob('loader-*'))))
  work.mkdir()
  np.save(str(work / 'images.npy'), images)
  (work / 'paths.json').write_text(
      '[%s]' % ', '.join('"%s"' % p for p in paths))
  env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
  result = subprocess.run(
      [python, '-c', LOADER, str(work / 'images.npy'),
       str(work / 'paths.json'), str(work / 'out.npz')] +
      [str(d) for d in export_dirs], cwd=str(work), env=env,
      stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      universal_newlines=True, timeout=240)
  assert result.returncode == 0, result.stdout + result.stderr
  out = np.load(str(work / 'out.npz'))
  loaded = [{} for _ in export_dirs]
  for key in out.files:
    n, signature, output = key.split('/')
    loaded[int(n)].setdefault(signature, {})[output] = out[key]
  return loaded, result.stdout


def classified(result, names):
  """{image path: [probability of each class]} from cifar10_classify.py's
  lines, run with --top_k=<number of classes>."""
  table = {}
  for line in result.stdout.splitlines():
    path, shown = line.rsplit(': ', 1) if ': ' in line else (None, None)
    if path is None:
      continue
    probabilities = np.zeros(len(names))
    for name, p in re.findall(r'([^,(]+?) \((\d\.\d{3})\)', shown):
      probabilities[names.index(name.strip())] = float(p)
    table[path] = probabilities
  return table


def _requirements_key():
  """.ci/run's cache key: the first 16 hex digits of requirements.txt's
  SHA-256."""
  with open(os.path.join(REPO, 'requirements.txt'), 'rb') as f:
    return hashlib.sha256(f.read()).hexdigest()[:16]


def interpreter(runtime, current):
  """(python, None) of runtime ('tf1.15' or 'tf2'), or (None, why not).

  The running one when it is runtime (current, '1.15.5' say), else
  $CIFAR10_TF115_PYTHON (or $CIFAR10_TF2_PYTHON), else the virtual
  environment .ci/run builds in its cache (this requirements.txt's first).
  """
  if current.startswith('1.') == (runtime == 'tf1.15'):
    return sys.executable, None
  variable = 'CIFAR10_TF115_PYTHON' if runtime == 'tf1.15' else (
      'CIFAR10_TF2_PYTHON')
  if os.environ.get(variable):
    return os.environ[variable], None
  cache = os.environ.get('CIFAR10_VENV_CACHE') or os.path.expanduser(
      '~/.cache/cifar10-tf1')
  found = sorted(glob.glob(os.path.join(cache, 'venv-%s-*' % runtime,
                                        'bin', 'python')),
                 key=lambda p: _requirements_key() not in p)
  if found:
    return found[0], None
  return None, ('no TensorFlow %s interpreter: set $%s or run .ci/run, '
                'which builds %s' % (
                    '1.15' if runtime == 'tf1.15' else '2.x', variable,
                    os.path.join(cache, 'venv-%s-*' % runtime)))
