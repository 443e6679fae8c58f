"""The errors a user can fix, which the scripts report in one line.

Scripts print their message, without a traceback, and exit 1 (cli.run).
Anything else that goes wrong is a bug and keeps its traceback.
"""


class UserError(Exception):
  """Something the user must fix: a flag, a directory, a checkpoint."""


class DataError(UserError):
  """A data file is missing or malformed; the message names the file."""


class DownloadError(DataError):
  """The data could not be downloaded or unpacked; nothing partial was kept."""
