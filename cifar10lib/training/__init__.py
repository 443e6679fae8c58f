"""Owns: cifar10.py (loss, train op), schedules, the loop, GPU towers, clusters.
May import: base, data, models, checkpoints.
"""
