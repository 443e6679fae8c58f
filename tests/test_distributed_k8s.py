"""bench/k8s_cluster.py's manifests (made by bench/k8s_manifests.py) give
each pod the TF_CONFIG of its task.

The TF_CONFIG of every pod goes through cluster_spec.resolve_cluster, the
parser cifar10_dist_train.py uses; each address of the cluster must be the
name of a headless Service that selects exactly the pod of that task.
"""
import json
import os
import subprocess
import sys

import pytest

from conftest import REPO

sys.path.insert(0, os.path.join(REPO, 'bench'))
import k8s_manifests  # noqa: E402
from cifar10lib.training import cluster_spec  # noqa: E402


def _documents(text):
  return [json.loads(doc) for doc in text.split('---\n') if doc.strip()]


@pytest.mark.parametrize('num_ps, num_workers', [(1, 2), (2, 4)])
def test_every_pod_gets_its_task_and_the_services_name_the_pods(num_ps,
                                                                num_workers):
  result = subprocess.run(
      [sys.executable, os.path.join(REPO, 'bench', 'k8s_cluster.py'),
       '--name', 'c10', '--ps', str(num_ps), '--workers', str(num_workers),
       '--image', 'example/cifar10:1', '--', '--train_dir=/train',
       '--max_steps=1000'], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      universal_newlines=True, timeout=60, check=True)
  objects = _documents(result.stdout)
  services = {o['metadata']['name']: o for o in objects
              if o['kind'] == 'Service'}
  jobs = [o for o in objects if o['kind'] == 'Job']
  assert len(services) == len(jobs) == num_ps + num_workers
  seen = set()
  for job in jobs:
    pod = job['spec']['template']
    (container,) = pod['spec']['containers']
    env = {e['name']: e['value'] for e in container['env']}
    cluster, job_name, index = cluster_spec.resolve_cluster(
        tf_config=env['TF_CONFIG'])
    seen.add((job_name, index))
    assert cluster == {
        'ps': ['c10-ps-%d:2222' % i for i in range(num_ps)],
        'worker': ['c10-worker-%d:2222' % i for i in range(num_workers)]}
    # This task's own address is a headless Service selecting this pod
    # alone (the labels of no other pod match).
    host, port = cluster[job_name][index].split(':')
    service = services[host]
    assert service['spec']['clusterIP'] == 'None'
    assert service['spec']['ports'][0]['port'] == int(port)
    assert container['ports'][0]['containerPort'] == int(port)
    selector = service['spec']['selector'].items()
    matching = [j['metadata']['name'] for j in jobs
                if selector <= j['spec']['template']['metadata'][
                    'labels'].items()]
    assert matching == [job['metadata']['name']] == [host]
    assert container['command'][:2] == ['python', 'cifar10_dist_train.py']
    if job_name == 'worker':
      assert container['command'][2:] == ['--train_dir=/train',
                                          '--max_steps=1000']
  assert seen == ({('ps', i) for i in range(num_ps)} |
                  {('worker', i) for i in range(num_workers)})


def test_tf_config_matches_what_the_flags_would_give():
  for job, index in (('ps', 0), ('worker', 0), ('worker', 2)):
    from_env = cluster_spec.resolve_cluster(
        tf_config=k8s_manifests.tf_config('c', 1, 3, job, index, port=5000))
    from_flags = cluster_spec.resolve_cluster(
        'c-ps-0:5000', 'c-worker-0:5000,c-worker-1:5000,c-worker-2:5000',
        job, index)
    assert from_env == from_flags
