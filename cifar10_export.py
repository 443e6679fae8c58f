"""Exports a trained model as a SavedModel, for TensorFlow Serving and others.

    python cifar10_export.py --checkpoint_dir=/tmp/cifar10_train --export_dir=/tmp/cifar10_export/1
    saved_model_cli show --dir /tmp/cifar10_export/1 --all

writes the latest checkpoint of --checkpoint_dir (or --checkpoint_path) as a
SavedModel that any program with TensorFlow loads, without this code. Its
signature serving_default takes a batch of uint8 images [N, 32, 32, 3]
(MNIST: [N, 28, 28, 1]); serving_bytes takes PNG or JPEG files [N] of any
size, decoded and scaled as cifar10_classify.py does. Both prepare the
images as evaluation does (the central 24x24 crop, standardized, for the
tutorial's network), average the mirror images' logits with --tta, and
return probabilities [N, classes], classes [N] (the most likely) and
names [N] (its name, from --data_dir as cifar10_classify.py names it).

The model runs with the moving averages of its weights where evaluation
uses them (--moving_average=false: the raw weights); the model flags
(--model, --dataset, --norm, --top_layers, --use_fp16, --preprocessing,
--augmentation) must be those it was trained with. An existing --export_dir
is refused unless --overwrite, which replaces an earlier export once the
new one is complete; a failed export leaves nothing at --export_dir.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

from absl import flags

from cifar10lib.cli import cli
from cifar10lib.evaluation import classifying
from cifar10lib.evaluation import exporting

FLAGS = flags.FLAGS
cli.define_flags('data', 'model', 'checkpoint', 'preprocessing', 'session')
cli.define_script_flags('checkpoint_path', 'export_dir', 'overwrite',
                        'moving_average', 'tta')


def main(argv, cfg):
  del argv
  checkpoint = exporting.resolve_checkpoint(cfg.checkpoint_dir,
                                            FLAGS.checkpoint_path)
  exporting.check_export_dir(FLAGS.export_dir, FLAGS.overwrite)
  names = classifying.class_names(cfg.data_dir, cfg.dataset)
  with cli.stop_signals_interrupt():
    step = exporting.export(
        checkpoint, FLAGS.export_dir, cfg.model_options(train=False),
        cfg.use_fp16, cli.session_config(cfg), cfg.preprocessing,
        cfg.dataset, recorded=cli.options_to_read_with(cfg),
        full=cli.full_images(cfg),
        moving_average=cli.moving_average(cfg),
        tta=FLAGS.tta, names=names, overwrite=FLAGS.overwrite)
  print('Exported %s%s to %s: signatures %s (uint8 images) and %s (PNG or '
        'JPEG bytes).' % (checkpoint, '' if step is None else
                          ' (global step %d)' % step, FLAGS.export_dir,
                          exporting.IMAGES_SIGNATURE,
                          exporting.BYTES_SIGNATURE), flush=True)


if __name__ == '__main__':
  cli.run(main)
