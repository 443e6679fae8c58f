"""Owns: what a run keeps on disk: checkpoints, resuming, records, dirs.
May import: base, models (a checkpoint's variables tell its network).
"""
