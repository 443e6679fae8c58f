"""What the tests fake: data sets, pictures, a download server, checkpoints.

Everything here follows the published formats, never the code under test,
and imports neither pytest nor, until a checkpoint helper is called,
TensorFlow. `datasets` writes CIFAR records and data directories; `images`
MNIST's IDX files and PNG pictures; `server` makes tarballs and serves them
over HTTP on 127.0.0.1 (the suite's one server); `checkpoints` writes, reads
and damages checkpoints and reads event files.
"""
from fakes.checkpoints import SHADOW
from fakes.checkpoints import checkpoint_step
from fakes.checkpoints import copy_checkpoint
from fakes.checkpoints import copy_train_dir
from fakes.checkpoints import latest_step
from fakes.checkpoints import model_shapes
from fakes.checkpoints import read_checkpoint
from fakes.checkpoints import recorded_checkpoint
from fakes.checkpoints import scalar_events
from fakes.checkpoints import truncate_data_file
from fakes.checkpoints import write_checkpoint
from fakes.checkpoints import write_model_checkpoint
from fakes.checkpoints import zeros
from fakes.datasets import CIFAR10
from fakes.datasets import CIFAR100
from fakes.datasets import all_training_records
from fakes.datasets import break_file
from fakes.datasets import make_records
from fakes.datasets import write_dataset
from fakes.datasets import write_label_names
from fakes.datasets import write_records
from fakes.images import idx_images_bytes
from fakes.images import idx_labels_bytes
from fakes.images import write_idx
from fakes.images import write_png
from fakes.server import DownloadServer
from fakes.server import dataset_members
from fakes.server import free_ports
from fakes.server import md5
from fakes.server import tarball
