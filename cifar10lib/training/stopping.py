"""Stopping a trainer cleanly on a signal: SIGINT, SIGTERM and SIGHUP.

The training loop installs a StopOnSignalHook for the time it runs; code
that waits outside a step (the distributed chief waiting for its workers)
asks stop_requested() whether to give up.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import os
import signal
import sys
import threading

from cifar10lib.base.compat import tf

# A closed terminal (SIGHUP) stops training as kill does.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_installed_stoppers = []  # the StopOnSignalHook now handling STOP_SIGNALS


class StopOnSignalHook(tf.train.SessionRunHook):
  """Turns SIGINT, SIGTERM and SIGHUP into a clean stop after the current step.

  The session then closes normally, and its checkpoint saver writes a final
  checkpoint at the step reached. Python runs a signal handler only once
  the main thread's step returns, and a step waiting on an empty input
  queue never does; so a thread, woken through signal.set_wakeup_fd, also
  asks the session's coordinator to stop, which closes the input queues
  (each queue runner cancels its queue then): a step that has its batch
  finishes as usual, one still waiting for it ends with OutOfRangeError,
  which the session takes as a clean stop. A second signal while stopping
  ends the process at once.
  """

  def __init__(self):
    self.signal_name = None
    self._previous = {}
    self._previous_wakeup_fd = -1
    self._coord = None
    self._cancelled = False
    self._wakeup = None

  def after_create_session(self, session, coord):
    del session
    self._coord = coord
    if self.signal_name:
      self._cancel_inputs()  # it came while the session was being created

  def _handle(self, signum, frame):
    del frame
    self.signal_name = self.signal_name or signal.Signals(signum).name

  def _cancel_inputs(self):
    if self._cancelled:
      return
    self._cancelled = True
    self._coord.request_stop()

  def _watch(self, read_fd):
    """Runs in a thread: closes the input queues on the first stop signal."""
    numbers = [int(sig) for sig in STOP_SIGNALS]
    try:
      while True:
        data = os.read(read_fd, 1)
        if not data:
          return  # uninstall() closed the pipe
        if data[0] not in numbers:
          continue
        name = signal.Signals(data[0]).name
        if self._cancelled:
          sys.stderr.write('%s: error: %s again while stopping: stopped at '
                           'once, without a final checkpoint\n'
                           % (os.path.basename(sys.argv[0]), name))
          sys.stderr.flush()
          os._exit(128 + data[0])  # pylint: disable=protected-access
        self.signal_name = self.signal_name or name
        if self._coord is not None:
          self._cancel_inputs()
    finally:
      os.close(read_fd)

  def install(self):
    for sig in STOP_SIGNALS:
      self._previous[sig] = signal.signal(sig, self._handle)
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    self._wakeup = write_fd
    self._previous_wakeup_fd = signal.set_wakeup_fd(write_fd)
    watcher = threading.Thread(target=self._watch, args=(read_fd,),
                               name='stop-on-signal')
    watcher.daemon = True
    watcher.start()
    _installed_stoppers.append(self)

  def uninstall(self):
    _installed_stoppers.remove(self)
    signal.set_wakeup_fd(self._previous_wakeup_fd)
    if self._wakeup is not None:
      os.close(self._wakeup)
      self._wakeup = None
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)

  def after_run(self, run_context, run_values):
    if self.signal_name:
      run_context.request_stop()


def stop_requested():
  """The name of the stop signal a running trainer has received, or None."""
  return _installed_stoppers[-1].signal_name if _installed_stoppers else None

