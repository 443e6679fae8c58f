"""Owns: scoring a trained network: validation, eval, your own images.
May import: base, data, models, checkpoints, training.
"""
