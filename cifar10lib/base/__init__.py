"""Owns: TensorFlow, imported once and quietly (compat); errors; help check.
May import: nothing of cifar10lib (the bottom layer).
"""
