"""What the tests (and bench/benchmark.py) fake: data sets, a download
server, checkpoints.

Everything here follows the published formats, never the code under test,
and imports neither pytest nor, until a checkpoint helper is called,
TensorFlow.

Data sets. A format (CIFAR10, CIFAR100) names a data set's directory and
files and lays out its records; `records` makes records in memory,
`write_records` writes one file of them and `write_dataset` a whole data
directory, every one of them through the format's `encode`. Pixels are
random, learnable (each class its own mean colour), grey (three equal
channels) or given. A format of another layout, such as MNIST's IDX files
(images and labels in separate files, 28x28x1), goes beside CifarFormat with
the same attributes and its own `write(directory, name, records)`; the
writers below then take it unchanged.
"""
import collections
import hashlib
import http.server
import io
import os
import re
import shutil
import socket
import tarfile
import threading

import numpy as np


# ---------------------------------------------------------------------------
# Data sets


class CifarFormat(object):
  """A CIFAR binary data set: records of label bytes, then depth-major pixels.

  label_classes holds each label byte's number of classes: (10,) for
  CIFAR-10, (20, 100) for CIFAR-100's coarse and fine labels. label_names maps
  each file naming classes (one per line) to the names it holds.
  """
  image_shape = (32, 32, 3)

  def __init__(self, batches_dir, label_classes, train_files, test_files,
               label_names):
    self.batches_dir = batches_dir
    self.label_classes = tuple(label_classes)
    self.train_files = list(train_files)
    self.test_files = list(test_files)
    self.label_names = dict(label_names)

  @property
  def label_bytes(self):
    return len(self.label_classes)

  @property
  def record_bytes(self):
    return self.label_bytes + int(np.prod(self.image_shape))

  def random_labels(self, rng, count):
    """count random labels: [count], or [count, label bytes] for several."""
    columns = [rng.randint(0, n, size=count) for n in self.label_classes]
    return columns[0] if len(columns) == 1 else np.stack(columns, axis=1)

  def encode(self, labels, pixels):
    """The bytes of records with these labels and [n, 32, 32, 3] pixels."""
    labels = np.asarray(labels, dtype=np.uint8).reshape(len(pixels), -1)
    assert labels.shape[1] == self.label_bytes, labels.shape
    depth_major = np.asarray(pixels, np.uint8).transpose(0, 3, 1, 2).reshape(
        len(pixels), -1)
    return np.concatenate([labels, depth_major], axis=1).tobytes()

  def write(self, directory, name, records):
    """Writes records to directory/name; returns [the path written]."""
    path = os.path.join(str(directory), name)
    with open(path, 'wb') as f:
      f.write(records.data)
    return [path]


CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog',
                   'frog', 'horse', 'ship', 'truck']
CIFAR10 = CifarFormat(
    'cifar-10-batches-bin', (10,),
    ['data_batch_%d.bin' % i for i in range(1, 6)], ['test_batch.bin'],
    {'batches.meta.txt': CIFAR10_CLASSES})
CIFAR100 = CifarFormat(
    'cifar-100-binary', (20, 100), ['train.bin'], ['test.bin'],
    {'coarse_label_names.txt': ['coarse%d' % i for i in range(20)],
     'fine_label_names.txt': ['fine%d' % i for i in range(100)]})
RECORD_BYTES = CIFAR10.record_bytes   # 3,073


class Records(collections.namedtuple('Records', 'labels pixels data')):
  """Records made by `records`: labels, [n, 32, 32, 3] uint8 pixels, bytes."""


def fake_pixels(labels, seed=0, style='random', fmt=CIFAR10):
  """Pixels for records with these labels, drawn from RandomState(seed).

  style: 'random' (uniform bytes), 'learnable' (a quarter noise, three
  quarters the class's own colour: a few steps of training tell the classes
  apart) or 'grey' (uniform bytes, the same in the three channels). A
  CIFAR-100 record's class is its last (fine) label.
  """
  rng = np.random.RandomState(seed)
  labels = np.asarray(labels)
  classes = labels if labels.ndim == 1 else labels[:, -1]
  n = len(labels)
  if style == 'grey':
    grey = rng.randint(0, 256, size=(n,) + fmt.image_shape[:2])
    return np.repeat(grey[..., None], fmt.image_shape[2], axis=-1).astype(
        np.uint8)
  pixels = rng.randint(0, 256, size=(n,) + fmt.image_shape).astype(np.uint8)
  if style == 'learnable':
    base = (np.arange(fmt.label_classes[-1])[:, None] *
            np.array([25, 70, 130]) % 256)
    pixels = (pixels // 4 + base[classes][:, None, None, :] * 3 // 4).astype(
        np.uint8)
  elif style != 'random':
    raise ValueError('unknown pixel style %r' % style)
  return pixels


def records(labels, seed=0, style='random', pixels=None, fmt=CIFAR10):
  """Records with these labels: the given pixels, or fake_pixels' of style."""
  labels = np.asarray(labels)
  if pixels is None:
    pixels = fake_pixels(labels, seed, style, fmt)
  pixels = np.asarray(pixels, dtype=np.uint8)
  return Records(labels, pixels, fmt.encode(labels, pixels))


def make_records(labels, seed=0, learnable=False):
  """(bytes, pixels) of CIFAR-10 records with these labels."""
  made = records(labels, seed, 'learnable' if learnable else 'random')
  return made.data, made.pixels


def write_records(path, labels, seed=0, style='random', pixels=None,
                  fmt=CIFAR10):
  """Writes one file of records (see `records`) at path; returns them."""
  made = records(labels, seed, style, pixels, fmt)
  directory, name = os.path.split(str(path))
  if directory and not os.path.isdir(directory):
    os.makedirs(directory)
  fmt.write(directory, name, made)
  return made


def write_label_names(data_dir, names=None, fmt=CIFAR10):
  """Writes fmt's class-name files (or, for one file, the given names)."""
  batches = os.path.join(str(data_dir), fmt.batches_dir)
  if not os.path.isdir(batches):
    os.makedirs(batches)
  for filename, default in sorted(fmt.label_names.items()):
    with open(os.path.join(batches, filename), 'w') as f:
      f.write('\n'.join(names or default) + '\n')


def dataset_records(train_per_file=60, test_records=100, seed=0,
                    style='random', test_labels=None, fmt=CIFAR10):
  """[(file name, Records)] of a data set: fmt's training files, then test.

  Labels come from RandomState(seed) (test_labels, when given, are the test
  file's); each file's pixels from their own seed.
  """
  rng = np.random.RandomState(seed)
  out = []
  for i, name in enumerate(fmt.train_files):
    labels = fmt.random_labels(rng, train_per_file)
    out.append((name, records(labels, seed * 100 + i, style, fmt=fmt)))
  for i, name in enumerate(fmt.test_files):
    labels = test_labels
    if labels is None:
      labels = fmt.random_labels(rng, test_records)
    out.append((name, records(labels, seed * 100 + 99 - i, style, fmt=fmt)))
  return out


def write_dataset(data_dir, train_per_file=60, test_records=100, seed=0,
                  learnable=False, test_labels=None, fmt=CIFAR10,
                  style=None):
  """Writes data_dir/<fmt.batches_dir>/: every file of fmt, and class names.

  Returns {'train': [Records of each training file], 'test': Records}.
  """
  batches = os.path.join(str(data_dir), fmt.batches_dir)
  if not os.path.isdir(batches):
    os.makedirs(batches)
  style = style or ('learnable' if learnable else 'random')
  out = {'train': []}
  for name, made in dataset_records(train_per_file, test_records, seed, style,
                                    test_labels, fmt):
    fmt.write(batches, name, made)
    if name in fmt.train_files:
      out['train'].append(made)
    else:
      out['test'] = made
  write_label_names(data_dir, fmt=fmt)
  return out


def all_training_records(written):
  """(labels, pixels) of every training file write_dataset wrote, in order."""
  return (np.concatenate([r.labels for r in written['train']]),
          np.concatenate([r.pixels for r in written['train']]))


def break_file(path, how, record=3, label_byte=0, label=None, fmt=CIFAR10):
  """Damages a data file as a user may find it; returns path.

  how: 'missing' (removed), 'empty' (0 bytes), 'size' (100 stray bytes at
  the end) or 'label' (record's label byte label_byte set to label, by
  default the first value out of range).
  """
  path = str(path)
  if how == 'missing':
    os.remove(path)
  elif how == 'empty':
    open(path, 'wb').close()
  elif how == 'size':
    with open(path, 'ab') as f:
      f.write(b'\0' * 100)
  elif how == 'label':
    if label is None:
      label = fmt.label_classes[label_byte]
    with open(path, 'r+b') as f:
      f.seek(record * fmt.record_bytes + label_byte)
      f.write(bytes([label]))
  else:
    raise ValueError('unknown breakage %r' % how)
  return path


# ---------------------------------------------------------------------------
# Tarballs and a download server


def tarball(members):
  """The bytes of a gzip tar holding {member name: bytes}."""
  buf = io.BytesIO()
  with tarfile.open(fileobj=buf, mode='w:gz') as tar:
    for name, data in sorted(members.items()):
      info = tarfile.TarInfo(name)
      info.size = len(data)
      tar.addfile(info, io.BytesIO(data))
  return buf.getvalue()


def dataset_members(members_dir=None, label_names=True, fmt=CIFAR10,
                    **dataset_args):
  """{member name: bytes} of a data set as its tarball holds it.

  The files sit under members_dir (default fmt.batches_dir); dataset_args go
  to dataset_records.
  """
  members_dir = members_dir or fmt.batches_dir
  members = {members_dir + '/' + name: made.data for name, made in
             dataset_records(fmt=fmt, **dataset_args)}
  if label_names:
    for filename, names in fmt.label_names.items():
      members[members_dir + '/' + filename] = (
          '\n'.join(names) + '\n').encode('ascii')
  return members


def md5(data):
  return hashlib.md5(data).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):

  def do_GET(self):
    self.server.requests.append(self.path)
    route = self.server.routes.get(self.path)
    if route is None:
      self.send_error(404, 'Not Found')
      return
    body, announced = route
    self.send_response(200)
    self.send_header('Content-Type', 'application/gzip')
    self.send_header('Content-Length', str(announced))
    self.end_headers()
    self.wfile.write(body)   # then the connection closes, maybe early
    self.close_connection = True

  def log_message(self, *args):
    pass


class DownloadServer(object):
  """A real HTTP server on 127.0.0.1, in a thread, serving what a test sets.

  serve(path, body, announced) answers GET path with body under a
  Content-Length of announced bytes (default len(body)); announcing more than
  is sent makes a truncated download. Other paths get 404. requests lists the
  paths asked for. dead_url is on a port that is bound but never listens, so
  connections to it are refused.
  """

  def __init__(self):
    self._httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
    self._httpd.daemon_threads = True
    self._httpd.requests = self.requests = []
    self._httpd.routes = self.routes = {}
    self.base = 'http://127.0.0.1:%d' % self._httpd.server_address[1]
    self._thread = threading.Thread(target=self._httpd.serve_forever)
    self._thread.daemon = True
    self._thread.start()
    self._dead = socket.socket()
    self._dead.bind(('127.0.0.1', 0))
    self.dead_url = 'http://127.0.0.1:%d/cifar-10-binary.tar.gz' % (
        self._dead.getsockname()[1])

  def serve(self, path, body, announced=None):
    """Serves body at path; returns its URL."""
    self.routes[path] = (body, len(body) if announced is None else announced)
    return self.url(path)

  def url(self, path):
    return self.base + path

  def close(self):
    self._dead.close()
    self._httpd.shutdown()
    self._httpd.server_close()
    self._thread.join()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


# ---------------------------------------------------------------------------
# Checkpoints and event files (these import TensorFlow when called)


def _tf():
  from cifar10lib.compat import tf   # TensorFlow in graph mode, as the scripts run it
  return tf


SHADOW = '/ExponentialMovingAverage'


def model_shapes(moving_averages=False):
  """{name: shape} of the model's variables, from the model itself.

  With moving_averages, their shadows too: everything cifar10_train.py saves
  and cifar10_eval.py restores, apart from global_step.
  """
  from cifar10lib import cifar10
  tf = _tf()
  with tf.Graph().as_default():
    global_step = tf.train.get_or_create_global_step()
    images = tf.placeholder(tf.float32, [None, 24, 24, 3])
    cifar10.inference(images)
    if moving_averages:
      tf.train.ExponentialMovingAverage(
          cifar10.MOVING_AVERAGE_DECAY, global_step).apply(
              tf.trainable_variables())
    return {v.op.name: v.shape.as_list() for v in tf.global_variables()
            if v.op.name != 'global_step'}


def zeros(shapes):
  """{name: float32 zeros of that shape}."""
  return {name: np.zeros(shape, np.float32) for name, shape in shapes.items()}


def write_checkpoint(prefix, tensors):
  """Saves {name: numpy value} as a checkpoint at prefix, made the latest."""
  tf = _tf()
  prefix = str(prefix)
  if not os.path.isdir(os.path.dirname(prefix)):
    os.makedirs(os.path.dirname(prefix))
  with tf.Graph().as_default():
    variables = {name: tf.Variable(value, name='v%d' % i)
                 for i, (name, value) in enumerate(sorted(tensors.items()))}
    saver = tf.train.Saver(variables)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      return saver.save(sess, prefix)


def write_model_checkpoint(prefix, raw=None, shadow=None, step=0):
  """A checkpoint of the model at prefix with the values a test designs.

  raw and shadow map variable names to values; every other variable is 0.
  Without shadow the checkpoint has no moving averages. global_step is step.
  """
  shapes = model_shapes()
  tensors = zeros(shapes)
  tensors.update(raw or {})
  if shadow is not None:
    averages = zeros(shapes)
    averages.update(shadow)
    tensors.update((name + SHADOW, value) for name, value in averages.items())
  tensors['global_step'] = np.int64(step)
  return write_checkpoint(prefix, tensors)


def read_checkpoint(path):
  """{name: value} of every tensor of a checkpoint (or a directory's latest)."""
  tf = _tf()
  path = str(path)
  if os.path.isdir(path):
    path = tf.train.latest_checkpoint(path)
  reader = tf.train.NewCheckpointReader(path)
  return {name: reader.get_tensor(name)
          for name in reader.get_variable_to_shape_map()}


def checkpoint_step(checkpoint):
  """Reads every tensor of checkpoint; returns its global_step."""
  return int(read_checkpoint(checkpoint)['global_step'])


def latest_step(train_dir):
  """(latest checkpoint, its step), every tensor read, the name checked."""
  tf = _tf()
  latest = tf.train.latest_checkpoint(str(train_dir))
  assert latest, 'no checkpoint in %s: %s' % (train_dir,
                                              os.listdir(str(train_dir)))
  step = checkpoint_step(latest)
  assert latest.endswith('model.ckpt-%d' % step), (latest, step)
  return latest, step


def recorded_checkpoint(train_dir):
  """The latest checkpoint as train_dir/checkpoint names it (no TensorFlow)."""
  with open(os.path.join(str(train_dir), 'checkpoint')) as f:
    return re.search(r'^model_checkpoint_path: "(.*)"$', f.read(),
                     re.M).group(1)


def truncate_data_file(checkpoint):
  """Cuts the largest data file of checkpoint in half, as a full disk would."""
  directory = os.path.dirname(checkpoint)
  data = [os.path.join(directory, n) for n in os.listdir(directory)
          if n.startswith(os.path.basename(checkpoint) + '.data-')]
  biggest = max(data, key=os.path.getsize)
  with open(biggest, 'r+b') as f:
    f.truncate(os.path.getsize(biggest) // 2)


def copy_train_dir(source, target):
  """Copies a training directory, its `checkpoint` file made relative.

  TensorFlow records absolute paths there, so a plain copy would still name
  (and a test would then damage) the original's files. Returns the copy's
  latest checkpoint.
  """
  tf = _tf()
  shutil.copytree(str(source), str(target))
  state = tf.train.get_checkpoint_state(str(target))
  tf.train.update_checkpoint_state(
      str(target), os.path.basename(state.model_checkpoint_path),
      [os.path.basename(p) for p in state.all_model_checkpoint_paths])
  latest = tf.train.latest_checkpoint(str(target))
  assert os.path.dirname(latest) == str(target)
  return latest


def copy_checkpoint(checkpoint, new_step):
  """Copies checkpoint's files as model.ckpt-new_step; returns that path."""
  directory, base = os.path.split(checkpoint)
  target = os.path.join(directory, 'model.ckpt-%d' % new_step)
  for name in os.listdir(directory):
    if name.startswith(base + '.'):
      shutil.copy(os.path.join(directory, name), target + name[len(base):])
  return target


def scalar_events(log_dir):
  """{tag: [(step, value)]} of every scalar in log_dir's event files."""
  import glob
  tf = _tf()
  scalars = {}
  for path in glob.glob(os.path.join(str(log_dir), 'events.out.tfevents.*')):
    for event in tf.train.summary_iterator(path):
      for value in event.summary.value:
        if value.WhichOneof('value') == 'simple_value':
          scalars.setdefault(value.tag, []).append(
              (event.step, value.simple_value))
  return scalars


def free_ports(n):
  """n distinct loopback ports that nothing listens on right now."""
  socks = []
  try:
    for _ in range(n):
      s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
      s.bind(('127.0.0.1', 0))
      socks.append(s)
    return [s.getsockname()[1] for s in socks]
  finally:
    for s in socks:
      s.close()
