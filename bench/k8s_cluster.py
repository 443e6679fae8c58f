"""Kubernetes manifests for a cifar10_dist_train.py cluster, with TF_CONFIG.

    python bench/k8s_cluster.py --name cifar10 --ps 1 --workers 2 \
        --image registry.example.com/cifar10-tf1:latest > cluster.yaml
    kubectl apply -f cluster.yaml

The objects (bench/k8s_manifests.py): one Job per task (one pod each), and
per task a headless Service that selects that pod alone, so that the task's
address `<name>-<job>-<index>:<port>` resolves to its pod; every pod gets
the same cluster in TF_CONFIG, with its own task. docs/distributed.md shows
the output. It is one JSON document per object, separated by `---` (JSON is
YAML, so kubectl reads it as any manifest).
"""
from __future__ import print_function

import argparse

from k8s_manifests import PORT, manifests, to_yaml  # bench/, next to this file


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--name', default='cifar10')
  parser.add_argument('--ps', type=int, default=1)
  parser.add_argument('--workers', type=int, default=2)
  parser.add_argument('--image', required=True)
  parser.add_argument('--port', type=int, default=PORT)
  parser.add_argument('args', nargs='*',
                      help='the workers\' flags, after --, e.g. '
                           '-- --train_dir=/train --max_steps=100000')
  options = parser.parse_args()
  if options.ps < 1 or options.workers < 1:
    parser.error('--ps and --workers need at least one task each')
  print(to_yaml(manifests(options.name, options.ps, options.workers,
                          options.image, options.args, options.port)), end='')


if __name__ == '__main__':
  main()
