"""The library the scripts share, in seven packages layered bottom to top.

    base < data < models < checkpoints < training < evaluation < cli

A package imports only from the packages below it (tests/test_layout.py
checks it); docs/code_map.md says what each holds and where to add things.
"""
