"""The tutorial's model API, as `import cifar10` has always given it.

    images, labels = cifar10.distorted_inputs()
    logits = cifar10.inference(images)
    total_loss = cifar10.loss(logits, labels)
    train_op = cifar10.train(total_loss, global_step, num_examples_per_epoch)

The bodies, and the hyper-parameters as named constants, are in
cifar10lib/training/cifar10.py; this file only puts them where the tutorial's
users look for them.
"""
# pylint: disable=unused-import,wildcard-import,unused-wildcard-import
from cifar10lib.training.cifar10 import *
from cifar10lib.training.cifar10 import (distorted_inputs, inference, inputs,
                                         loss, maybe_download_and_extract,
                                         train)
