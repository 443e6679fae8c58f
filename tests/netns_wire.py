"""A slow, lossy cable between a network host and its switch, in user space.

What `tc qdisc add dev eth0 root netem delay 50ms loss 1%` does on a host,
for kernels built without netem (CONFIG_NET_SCH_NETEM): netns_cluster.py
gives the host a TAP interface instead of its veth, and a TAP port on the
bridge, and this process carries every Ethernet frame between the two. The
frames the host sends are held --delay_ms and dropped with probability
--loss; those it receives pass at once. The kernel hands a TAP device whole
frames of at most the MTU (it segments TCP's large sends first), so each
loss is one packet's, as with netem.

    ip netns exec BRIDGE_NS python netns_wire.py BRIDGE_TAP HOST_NS HOST_TAP \
        --delay_ms 50 --loss 0.01

It opens the bridge's TAP in the namespace it starts in, then enters
HOST_NS for the host's; it runs until killed.
"""
import argparse
import collections
import ctypes
import fcntl
import os
import random
import select
import struct
import time

TUNSETIFF = 0x400454ca
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
CLONE_NEWNET = 0x40000000


def open_tap(name):
  """A file descriptor of the existing TAP device name (this namespace's)."""
  fd = os.open('/dev/net/tun', os.O_RDWR)
  fcntl.ioctl(fd, TUNSETIFF, struct.pack('16sH', name.encode(),
                                         IFF_TAP | IFF_NO_PI))
  return fd


def enter_namespace(name):
  """Moves this (single-threaded) process into network namespace name."""
  libc = ctypes.CDLL(None, use_errno=True)
  fd = os.open('/var/run/netns/' + name, os.O_RDONLY)
  try:
    if libc.setns(fd, CLONE_NEWNET) != 0:
      raise OSError(ctypes.get_errno(), 'setns %s' % name)
  finally:
    os.close(fd)


def carry(host_fd, bridge_fd, delay_secs, loss, rng):
  """Forwards frames both ways for ever: the host's delayed and thinned."""
  held = collections.deque()   # (due time, frame), in order of arrival
  while True:
    timeout = max(0.0, held[0][0] - time.time()) if held else None
    ready = select.select([host_fd, bridge_fd], [], [], timeout)[0]
    for fd in ready:
      frame = os.read(fd, 65536)
      if fd == bridge_fd:
        os.write(host_fd, frame)
      elif rng.random() >= loss:
        held.append((time.time() + delay_secs, frame))
    now = time.time()
    while held and held[0][0] <= now:
      try:
        os.write(bridge_fd, held.popleft()[1])
      except OSError:
        pass  # a frame the bridge refuses is lost, as on a cable


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('bridge_tap')
  parser.add_argument('host_ns')
  parser.add_argument('host_tap')
  parser.add_argument('--delay_ms', type=float, default=50.0)
  parser.add_argument('--loss', type=float, default=0.01)
  parser.add_argument('--seed', type=int, default=0)
  args = parser.parse_args()
  bridge_fd = open_tap(args.bridge_tap)
  enter_namespace(args.host_ns)
  host_fd = open_tap(args.host_tap)
  print('carrying', flush=True)
  carry(host_fd, bridge_fd, args.delay_ms / 1000.0, args.loss,
        random.Random(args.seed))


if __name__ == '__main__':
  main()
