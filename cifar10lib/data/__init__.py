"""Owns: the datasets, their files, download, input pipelines, preprocessing.
May import: base.
"""
