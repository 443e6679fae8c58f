"""The tutorial's input API, as `import cifar10_input` has always given it.

    record = cifar10_input.read_cifar10(filename_queue)

The queue-based pipeline itself (FixedLengthRecordReader, distortions,
shuffled batches) and its constants are in cifar10lib/data/cifar10_input.py.
"""
# pylint: disable=unused-import,wildcard-import,unused-wildcard-import
from cifar10lib.data.cifar10_input import *
from cifar10lib.data.cifar10_input import (distorted_inputs, inputs,
                                           read_cifar10, CIFAR10Record)
