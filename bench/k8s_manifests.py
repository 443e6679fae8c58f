"""The Kubernetes objects of a cifar10_dist_train.py cluster, with TF_CONFIG.

One Job per task (one pod each), and per task a headless Service that
selects that pod alone, so that the task's address `<name>-<job>-<index>:
<port>` resolves to its pod; every pod gets the same cluster in TF_CONFIG,
with its own task. bench/k8s_cluster.py prints them;
tests/test_distributed_k8s.py checks them against the scripts' own parser.
"""
from __future__ import print_function

import json

PORT = 2222
JOBS = ('ps', 'worker')


def task_name(name, job, index):
  """The pod's, Job's and Service's name of a task: also its host name."""
  return '%s-%s-%d' % (name, job, index)


def cluster(name, num_ps, num_workers, port=PORT):
  """The cluster, as TF_CONFIG's "cluster" object."""
  return {job: ['%s:%d' % (task_name(name, job, i), port) for i in range(n)]
          for job, n in (('ps', num_ps), ('worker', num_workers))}


def tf_config(name, num_ps, num_workers, job, index, port=PORT):
  """TF_CONFIG's text for one task of the cluster."""
  return json.dumps({'cluster': cluster(name, num_ps, num_workers, port),
                     'task': {'type': job, 'index': index}}, sort_keys=True)


def manifests(name, num_ps, num_workers, image, args=(), port=PORT):
  """[Service, Job] for every task, as dicts ready for JSON."""
  objects = []
  for job, count in (('ps', num_ps), ('worker', num_workers)):
    for index in range(count):
      task = task_name(name, job, index)
      labels = {'app': name, 'job': job, 'task': str(index)}
      objects.append({
          'apiVersion': 'v1', 'kind': 'Service',
          'metadata': {'name': task, 'labels': labels},
          # Headless: the name resolves to the pod itself, as a host would.
          'spec': {'clusterIP': 'None', 'selector': labels,
                   'ports': [{'name': 'grpc', 'port': port}]}})
      container = {
          'name': 'task', 'image': image,
          'command': ['python', 'cifar10_dist_train.py'] +
                     ([] if job == 'ps' else list(args)),
          'env': [{'name': 'TF_CONFIG',
                   'value': tf_config(name, num_ps, num_workers, job, index,
                                      port)}],
          'ports': [{'containerPort': port, 'name': 'grpc'}]}
      objects.append({
          'apiVersion': 'batch/v1', 'kind': 'Job',
          'metadata': {'name': task, 'labels': labels},
          'spec': {
              'backoffLimit': 6,
              'template': {
                  'metadata': {'labels': labels},
                  # A task that fails is started again on its pod's name:
                  # a chief resumes from its last checkpoint.
                  'spec': {'restartPolicy': 'OnFailure',
                           'containers': [container]}}}})
  return objects


def to_yaml(objects):
  return ''.join('---\n%s\n' % json.dumps(o, indent=2, sort_keys=True)
                 for o in objects)
