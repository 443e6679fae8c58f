"""TensorFlow's 1.x graph API, the same on TensorFlow 1.15 and 2.x.

Every module takes `tf` from here: `tensorflow.compat.v1` with the v2
behaviour (eager execution, resource variables, ...) switched off, which the
queue-based input pipelines and graph-mode sessions need on TensorFlow 2.x.
"""
import tensorflow.compat.v1 as tf

tf.disable_v2_behavior()
