"""Tarballs and the one HTTP server the tests download from (127.0.0.1)."""
import hashlib
import http.server
import io
import socket
import tarfile
import threading
import time

from fakes.datasets import CIFAR10
from fakes.datasets import dataset_records


def tarball(members):
  """The bytes of a gzip tar holding {member name: bytes}."""
  buf = io.BytesIO()
  with tarfile.open(fileobj=buf, mode='w:gz') as tar:
    for name, data in sorted(members.items()):
      info = tarfile.TarInfo(name)
      info.size = len(data)
      tar.addfile(info, io.BytesIO(data))
  return buf.getvalue()


def dataset_members(members_dir=None, label_names=True, fmt=CIFAR10,
                    **dataset_args):
  """{member name: bytes} of a data set as its tarball holds it.

  The files sit under members_dir (default fmt.batches_dir); dataset_args go
  to dataset_records.
  """
  members_dir = members_dir or fmt.batches_dir
  members = {members_dir + '/' + name: made.data for name, made in
             dataset_records(fmt=fmt, **dataset_args)}
  if label_names:
    for filename, names in fmt.label_names.items():
      members[members_dir + '/' + filename] = (
          '\n'.join(names) + '\n').encode('ascii')
  return members


def md5(data):
  return hashlib.md5(data).hexdigest()


class _Body(object):
  """A route's answer: body under a Content-Length of announced bytes."""

  def __init__(self, body, announced):
    self.body, self.announced = body, announced

  def answer(self, handler):
    handler.send_response(200)
    handler.send_header('Content-Type', 'application/gzip')
    handler.send_header('Content-Length', str(self.announced))
    handler.end_headers()
    handler.wfile.write(self.body)   # then the connection closes, maybe early


class _Redirect(object):

  def __init__(self, to):
    self.to = to

  def answer(self, handler):
    handler.send_response(302)
    handler.send_header('Location', self.to)
    handler.end_headers()


class _Slow(object):
  """Announces `announced` bytes, then sends `chunk` bytes every `interval`
  seconds until they are all sent, the client leaves or the server closes."""

  def __init__(self, announced, chunk, interval):
    self.announced, self.chunk, self.interval = announced, chunk, interval

  def answer(self, handler):
    handler.send_response(200)
    handler.send_header('Content-Length', str(self.announced))
    handler.end_headers()
    sent = 0
    try:
      while sent < self.announced and not handler.server.stopping:
        piece = min(self.chunk, self.announced - sent)
        handler.wfile.write(b'x' * piece)
        handler.wfile.flush()
        sent += piece
        time.sleep(self.interval)
    except (IOError, OSError):
      pass   # the client went away


class _Handler(http.server.BaseHTTPRequestHandler):

  def do_GET(self):
    self.server.requests.append(self.path)
    route = self.server.routes.get(self.path)
    if route is None:
      self.send_error(404, 'Not Found')
    else:
      route.answer(self)
    self.close_connection = True

  def log_message(self, *args):
    pass


class DownloadServer(object):
  """A real HTTP server on 127.0.0.1, in a thread, serving what a test sets.

  serve(path, body, announced) answers GET path with body under a
  Content-Length of announced bytes (default len(body)); announcing more than
  is sent makes a truncated download. redirect(path, to) answers 302;
  serve_slowly(path, ...) trickles bytes, for downloads that take a while.
  Other paths get 404. requests lists the paths asked for. dead_url is on a
  port that is bound but never listens, so connections to it are refused.
  """

  def __init__(self):
    self._httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
    self._httpd.daemon_threads = True
    self._httpd.stopping = False
    self._httpd.requests = self.requests = []
    self._httpd.routes = self.routes = {}
    self.base = 'http://127.0.0.1:%d' % self._httpd.server_address[1]
    self._thread = threading.Thread(target=self._httpd.serve_forever)
    self._thread.daemon = True
    self._thread.start()
    self._dead = socket.socket()
    self._dead.bind(('127.0.0.1', 0))
    self.dead_url = 'http://127.0.0.1:%d/cifar-10-binary.tar.gz' % (
        self._dead.getsockname()[1])

  def serve(self, path, body, announced=None):
    """Serves body at path; returns its URL."""
    self.routes[path] = _Body(body, len(body) if announced is None
                              else announced)
    return self.url(path)

  def redirect(self, path, to):
    """Answers path with a redirect to the URL `to`; returns path's URL."""
    self.routes[path] = _Redirect(to)
    return self.url(path)

  def serve_slowly(self, path, announced, chunk=1, interval=0.5):
    """Trickles `announced` bytes at path, `chunk` every `interval` s."""
    self.routes[path] = _Slow(announced, chunk, interval)
    return self.url(path)

  def url(self, path):
    return self.base + path

  def close(self):
    self._httpd.stopping = True
    self._dead.close()
    self._httpd.shutdown()
    self._httpd.server_close()
    self._thread.join()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


def free_ports(n):
  """n distinct loopback ports that nothing listens on right now."""
  socks = []
  try:
    for _ in range(n):
      s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
      s.bind(('127.0.0.1', 0))
      socks.append(s)
    return [s.getsockname()[1] for s in socks]
  finally:
    for s in socks:
      s.close()
