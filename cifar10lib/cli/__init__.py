"""Owns: the command line: flags by group, their Config, run(main), help.
May import: any package below it (base to evaluation).
"""
