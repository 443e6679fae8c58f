"""Writes a checkpoint as a SavedModel that needs only TensorFlow to run.

`export` builds the network for serving with a checkpoint's weights (their
moving averages where evaluation uses them), with two signatures:

    serving_default  images: uint8 [N, H, W, C] at the dataset's size
                     (32x32x3 for CIFAR, 28x28x1 for MNIST)
    serving_bytes    image_bytes: string [N], encoded PNG or JPEG images of
                     any size, decoded and scaled as cifar10_classify.py does

Both prepare the images inside the graph as evaluation does (for the
tutorial's network the central 24x24 crop, standardized; the training set's
mean from the checkpoint where the model was trained with one; whole images
for --augmentation=translate_flip), apply the optional test-time
augmentation, and return probabilities (float32 [N, classes]), classes
(int64 [N], the most likely class) and names (string [N], its name).

The SavedModel is written with TensorFlow 1.15's SavedModelBuilder (through
tf.compat.v1 on TensorFlow 2.x) into a hidden temporary directory beside
--export_dir, then renamed into place: a failed or interrupted export leaves
nothing at --export_dir, and --overwrite replaces an earlier export only once
the new one is complete. cifar10_export.py turns its flags into this call.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import os
import shutil
import tempfile

from cifar10lib.checkpoints import checkpoints
from cifar10lib.training import cifar10
from cifar10lib.data import cifar10_input
from cifar10lib.evaluation import classifying
from cifar10lib.base.compat import tf
from cifar10lib.data import datasets
from cifar10lib.base.errors import UserError
from cifar10lib.evaluation import evaluation
from cifar10lib.data import preprocessing
from cifar10lib.checkpoints import run_record

IMAGES_SIGNATURE = 'serving_default'   # what a server runs unless told
BYTES_SIGNATURE = 'serving_bytes'
IMAGES_KEY = 'images'
# TensorFlow Serving's REST API takes the base64 of a string input given
# as {"b64": ...}; a name ending in _bytes says which input wants it.
BYTES_KEY = 'image_bytes'
OUTPUT_KEYS = ('probabilities', 'classes', 'names')
# What a SavedModel directory holds (either form); --overwrite replaces only
# a directory that holds one, never another directory given by mistake.
SAVED_MODEL_FILES = ('saved_model.pb', 'saved_model.pbtxt')


def resolve_checkpoint(checkpoint_dir, checkpoint_path=None):
  """The checkpoint to export: checkpoint_path, or the latest of a directory.

  Raises UserError naming the flag when there is none; prints resolve()'s
  note about the state file, if any.
  """
  flag, directory = '--checkpoint_dir', checkpoint_dir
  if checkpoint_path:
    if not os.path.isdir(checkpoint_path):
      checkpoints.read_checkpoint(checkpoint_path)  # UserError if unreadable
      return checkpoint_path
    flag, directory = '--checkpoint_path', checkpoint_path
  resolution = checkpoints.resolve(directory)
  if resolution.path is None:
    raise UserError('No checkpoint file found in %s=%s%s' % (
        flag, directory,
        '; ' + resolution.problem if resolution.problem else ''))
  if resolution.note:
    print('Note: %s' % resolution.note, flush=True)
  return resolution.path


def check_export_dir(export_dir, overwrite):
  """Raises UserError when export_dir may not be written (before any work)."""
  if not os.path.lexists(export_dir):
    return
  if not overwrite:
    raise UserError('--export_dir=%s already exists; give --overwrite to '
                    'replace it, or another --export_dir' % export_dir)
  if os.path.islink(export_dir) or not os.path.isdir(export_dir):
    raise UserError('--export_dir=%s is not a directory: --overwrite '
                    'replaces an earlier export only' % export_dir)
  if not any(os.path.isfile(os.path.join(export_dir, name))
             for name in SAVED_MODEL_FILES):
    raise UserError('--export_dir=%s holds no saved_model.pb: --overwrite '
                    'replaces an earlier export only' % export_dir)


class _ServingGraph(object):
  """The network for serving: the two signatures' tensors, the var_list."""

  def __init__(self, model_options, ds, preprocessing_mode, full, use_fp16,
               tta, names):
    self.graph = tf.Graph()
    # Resource variables, which TensorFlow 2.x's loader takes as its own
    # (it warns about each reference variable). One network, built on each
    # input: the second build reuses the first one's variables.
    with self.graph.as_default(), tf.variable_scope(
        tf.get_variable_scope(), reuse=tf.AUTO_REUSE, use_resource=True):
      mean = preprocessing.mean_variable(preprocessing_mode, ds=ds)
      shape = [None, ds.image_size, ds.image_size, ds.depth]
      images = tf.placeholder(tf.uint8, shape, name=IMAGES_KEY)
      encoded = tf.placeholder(tf.string, [None], name=BYTES_KEY)
      decoded = tf.map_fn(lambda c: classifying.decode_pixels(c, ds),
                          encoded, dtype=tf.float32, back_prop=False)
      decoded.set_shape(shape)
      self.inputs = {IMAGES_SIGNATURE: {IMAGES_KEY: images},
                     BYTES_SIGNATURE: {BYTES_KEY: encoded}}
      self.outputs = {}
      names = tf.constant(list(names))

      def logits_fn(views):
        if use_fp16:
          views = tf.cast(views, tf.float16)
        return tf.cast(cifar10.inference(views, train=False,
                                         **model_options), tf.float32)

      for signature, pixels in ((IMAGES_SIGNATURE, tf.cast(images,
                                                           tf.float32)),
                                (BYTES_SIGNATURE, decoded)):
        with tf.name_scope(signature):
          prepared = cifar10_input.eval_images(pixels, ds, mean, full)
          logits = evaluation.tta_logits(prepared, logits_fn, tta)
          probabilities = tf.nn.softmax(logits, name='probabilities')
          classes = tf.argmax(probabilities, 1, name='classes')
          self.outputs[signature] = dict(zip(OUTPUT_KEYS, (
              probabilities, classes,
              tf.gather(names, classes, name='names'))))
      self.shadow_vars = cifar10.variables_to_restore()
      self.raw_vars = {v.op.name: v for v in tf.global_variables()}

  def signature_defs(self):
    info = tf.saved_model.utils.build_tensor_info
    return {
        key: tf.saved_model.signature_def_utils.build_signature_def(
            inputs={k: info(t) for k, t in self.inputs[key].items()},
            outputs={k: info(t) for k, t in self.outputs[key].items()},
            method_name=tf.saved_model.signature_constants.PREDICT_METHOD_NAME)
        for key in self.inputs}


def _make_parents(path, made):
  """Creates path's missing ancestors, each added to made (deepest first)."""
  missing = []
  parent = os.path.dirname(path)
  while parent and not os.path.lexists(parent):
    missing.append(parent)
    parent = os.path.dirname(parent)
  for directory in reversed(missing):
    os.mkdir(directory)
    made.insert(0, directory)


def _remove_made(temp, made):
  if temp:
    shutil.rmtree(temp, ignore_errors=True)
  for directory in made:
    try:
      os.rmdir(directory)
    except OSError:
      pass


def _move_into_place(temp, export_dir):
  """Renames temp to export_dir, an earlier export there set aside first."""
  if not os.path.lexists(export_dir):
    os.rename(temp, export_dir)
    return
  old = tempfile.mkdtemp(prefix='.%s.old.' % os.path.basename(export_dir),
                         dir=os.path.dirname(export_dir))
  os.rename(export_dir, old)   # onto the empty directory just made
  try:
    os.rename(temp, export_dir)
  except OSError:
    os.rename(old, export_dir)
    raise
  shutil.rmtree(old, ignore_errors=True)


def _write(export_dir, save):
  """Runs save(temporary directory), then moves that into export_dir."""
  made, temp = [], None
  parent = os.path.dirname(export_dir)
  try:
    try:
      _make_parents(export_dir, made)
    except OSError as e:
      raise UserError('--export_dir=%s: cannot create %s: %s' % (
          export_dir, e.filename, e.strerror or e))
    try:
      temp = tempfile.mkdtemp(prefix='.%s.' % os.path.basename(export_dir),
                              suffix='.tmp', dir=parent)
    except OSError as e:
      raise UserError('--export_dir=%s: cannot write in %s: %s' % (
          export_dir, parent, e.strerror or e))
    model = os.path.join(temp, 'model')
    save(model)
    # mkdtemp's directory is the owner's only; a server may run as another.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(model, 0o777 & ~umask)
    try:
      _move_into_place(model, export_dir)
    except OSError as e:
      raise UserError('--export_dir=%s: cannot move the export into place: '
                      '%s' % (export_dir, e.strerror or e))
    del made[:]   # they hold the export now
  finally:
    _remove_made(temp, made)


def export(checkpoint, export_dir, model_options=None, use_fp16=False,
           config=None, preprocessing_mode=preprocessing.STANDARDIZE,
           ds=datasets.CIFAR10, recorded=None, full=False,
           moving_average=True, tta=0, names=None, overwrite=False):
  """Writes checkpoint's network as a SavedModel into export_dir.

  The arguments are classifying.Classifier's, and tta the test-time
  augmentation level (evaluation.tta_views); names, the class names in
  label order. Returns the checkpoint's global step (None if it has none).
  Raises UserError, leaving export_dir as it was, when the checkpoint does
  not fit the model or export_dir cannot be written.
  """
  export_dir = os.path.abspath(export_dir)
  check_export_dir(export_dir, overwrite)
  names = names or [str(i) for i in range(ds.num_classes)]
  serving = _ServingGraph(model_options or {}, ds, preprocessing_mode, full,
                          use_fp16, tta, names)
  with serving.graph.as_default():
    # Values of another dtype (--use_fp16, a float global_step) are cast.
    var_list = checkpoints.checkpoint_var_list(
        checkpoint, serving.shadow_vars, serving.raw_vars, moving_average,
        cast=True)
  preprocessing.check_checkpoint(checkpoint, preprocessing_mode)
  # Last: the variables say more, where they differ.
  if recorded is not None:
    run_record.check(os.path.dirname(checkpoint) or '.', recorded)

  def save(path):
    with tf.Session(graph=serving.graph, config=config) as sess:
      checkpoints.restore(sess, checkpoint, var_list)
      builder = tf.saved_model.Builder(path)
      builder.add_meta_graph_and_variables(
          sess, [tf.saved_model.tag_constants.SERVING],
          signature_def_map=serving.signature_defs(), clear_devices=True,
          strip_default_attrs=True)
      builder.save()

  _write(export_dir, save)
  reader = tf.train.NewCheckpointReader(checkpoint)
  return (int(reader.get_tensor('global_step'))
          if reader.has_tensor('global_step') else None)
