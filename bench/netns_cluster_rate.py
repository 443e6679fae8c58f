"""Examples/sec of cifar10_dist_train.py with 1 ps and N workers, each task
on its own network host (tests/netns_cluster.py's namespaces; needs root).

    sudo python bench/netns_cluster_rate.py --data_dir=/path/to/data \
        --workers=1,2,4 --steps=200 --runs=3 [--sync] [--slow_link]

Each run starts a fresh cluster (ps on host 0, worker i on host i + 1) that
trains from scratch to --steps global steps, and reads the chief's
`cluster:` lines: the cluster's examples/sec (the median of a run's lines
after the first) and from it the time the ps takes per update (one global
step: a batch of one worker, or with --sync one batch of each), and the
bytes the chief's host sent and received per step it ran. --slow_link
delays by 50 ms and drops 1 % of what worker 1 sends. All the tasks share
this machine's CPUs.
"""
from __future__ import print_function

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'tests'))
import netns_cluster  # noqa: E402

CLUSTER_LINE = re.compile(r': cluster: global step (\d+), ([\d.]+) examples/sec')


def run_once(num_workers, args, log_dir):
  """(examples/sec, seconds per update, bytes the chief sent per step,
  bytes it received per step) of one fresh cluster."""
  with netns_cluster.Cluster(num_workers + 1, log_dir) as cluster:
    if args.slow_link and num_workers > 1:
      cluster.slow_link(2, delay_ms=50, loss=0.01)
    spec = {'ps': [cluster.endpoint(0)],
            'worker': [cluster.endpoint(i + 1) for i in range(num_workers)]}

    def env(job, index):
      return {'TF_CONFIG': json.dumps({'cluster': spec, 'task': {
          'type': job, 'index': index}})}

    train_dir = os.path.join(log_dir, 'train')
    flags = ['--data_dir', args.data_dir, '--train_dir', train_dir,
             '--batch_size=%d' % args.batch_size,
             '--max_steps=%d' % args.steps,
             '--log_frequency=%d' % args.log_frequency,
             '--save_checkpoint_secs=100000', '--save_summaries_steps=100000']
    if args.sync:
      flags.append('--sync_replicas')
    cluster.start('ps', 0, ['cifar10_dist_train.py'], env('ps', 0))
    for i in reversed(range(num_workers)):
      cluster.start('worker%d' % i, i + 1, ['cifar10_dist_train.py'] + flags,
                    env('worker', i))
    for i in range(num_workers):
      if cluster.wait('worker%d' % i, args.timeout) != 0:
        raise SystemExit('worker %d failed:\n%s' % (
            i, cluster.output('worker%d' % i)[-3000:]))
    out = cluster.output('worker0')
    rates = [float(r) for _, r in CLUSTER_LINE.findall(out)][1:]
    ran = int(re.search(r'^worker 0: ran (\d+) steps', out, re.M).group(1))
    sent, received = cluster.link_bytes(1)
  if not rates:
    raise SystemExit('no cluster: lines after the first: raise --steps')
  rate = statistics.median(rates)
  per_update = args.batch_size * (num_workers if args.sync else 1)
  # The chief's traffic per step it ran (its start-up's included).
  return rate, per_update / rate, sent / ran, received / ran


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--data_dir', required=True)
  parser.add_argument('--workers', default='1,2,4')
  parser.add_argument('--steps', type=int, default=200)
  parser.add_argument('--runs', type=int, default=1)
  parser.add_argument('--batch_size', type=int, default=128)
  parser.add_argument('--log_frequency', type=int, default=10)
  parser.add_argument('--sync', action='store_true')
  parser.add_argument('--slow_link', action='store_true')
  parser.add_argument('--timeout', type=int, default=3600)
  args = parser.parse_args()
  # Stopped by a signal, the clusters are still removed on the way out
  # (a shell's background job even ignores SIGINT).
  signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
  signal.signal(signal.SIGINT, signal.default_int_handler)
  reason = netns_cluster.unavailable()
  if reason:
    raise SystemExit('netns_cluster_rate.py: error: cannot make network '
                     'namespaces: ' + reason)
  counts = [int(n) for n in args.workers.split(',')]
  results = {n: [] for n in counts}
  for run in range(args.runs):
    for n in counts:   # interleaved, so that the machine's load is shared
      log_dir = tempfile.mkdtemp(prefix='netns-rate-')
      try:
        started = time.time()
        results[n].append(run_once(n, args, log_dir))
        print('run %d, %d worker(s): %.1f examples/sec, %.3f s per update, '
              'chief sent %.2f MB and received %.2f MB per step (%.0f s)' % (
                  (run + 1, n) + tuple(results[n][-1][:2]) +
                  tuple(b / 1e6 for b in results[n][-1][2:]) +
                  (time.time() - started,)), flush=True)
      finally:
        shutil.rmtree(log_dir, ignore_errors=True)
  print('| workers | examples/sec (runs) | s per update at the ps (runs) |')
  print('|---|---|---|')
  for n in counts:
    rates = [r[0] for r in results[n]]
    times = [r[1] for r in results[n]]
    print('| %d | **%.0f** (%s) | **%.3f** (%s) |' % (
        n, statistics.median(rates), ', '.join('%.0f' % r for r in rates),
        statistics.median(times), ', '.join('%.3f' % t for t in times)))


if __name__ == '__main__':
  main()
