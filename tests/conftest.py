"""Shared fixtures: small face folders written by the tests, and running the entry points."""

import csv
import os
import pathlib
import socket
import subprocess
import sys
import tempfile

import numpy as np
import pytest
from PIL import Image

REPO = pathlib.Path(__file__).resolve().parents[1]
REAL_FACES = REPO.parent / "shared" / "data" / "faces"
# The entry points the tests start compile the same tiny steps again and again; JAX's
# persistent cache (keyed by program, flags and devices) lets later runs skip that.
JAX_CACHE = pathlib.Path(tempfile.gettempdir()) / f"ageflax-tests-jax-cache-{os.getuid()}"


def free_port() -> int:
  """A loopback port free now, for a server or a job's coordinator."""
  with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    return probe.getsockname()[1]


def subprocess_env(devices: int) -> dict[str, str]:
  """The environment of a test's child process: forced CPU devices, the shared JAX cache."""
  return dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
              JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2",
              JAX_COMPILATION_CACHE_DIR=str(JAX_CACHE),
              JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")


def write_face_folder(directory: pathlib.Path, num_images: int, seed: int = 0,
                      size: int = 40) -> pathlib.Path:
  """Writes labels.csv + final_files/ with noise JPEGs whose brightness grows with age."""
  rng = np.random.default_rng(seed)
  (directory / "final_files").mkdir(parents=True, exist_ok=True)
  rows = []
  for i in range(num_images):
    age = int(rng.integers(1, 90))
    name = f"{i:05d}.jpg"
    write_jpeg(directory / "final_files" / name, age, rng, size)
    rows.append((name, age))
  write_labels(directory, rows)
  return directory


def write_jpeg(path: pathlib.Path, age: float, rng: np.random.Generator, size: int = 40) -> None:
  """A noise JPEG whose brightness grows with `age`, so that a model can learn something."""
  pixels = np.clip(rng.normal(40 + 2 * age, 20, (size, size, 3)), 0, 255).astype(np.uint8)
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(pixels).save(path, quality=90)


def write_appa_real_folder(directory: pathlib.Path, sizes=(24, 8, 8), seed: int = 0,
                           size: int = 40) -> pathlib.Path:
  """An APPA-REAL-style release: train/ valid/ test/, NAME_face.jpg crops, gt_avg_*.csv.

  Real ages are 1-89; apparent ages are the real age + 3. Every third photo lacks its
  face crop, so readers must fall back to the full photo.
  """
  rng = np.random.default_rng(seed)
  number = 0
  for folder, count in zip(("train", "valid", "test"), sizes, strict=True):
    rows = []
    for _ in range(count):
      name = f"{number:06d}.jpg"
      age = int(rng.integers(1, 90))
      write_jpeg(directory / folder / name, age, rng, size * 2)
      if number % 3:
        write_jpeg(directory / folder / f"{name}_face.jpg", age, rng, size)
      rows.append((name, 5, age + 3, 1.5, age))
      number += 1
    write_labels(directory, rows, header=("file_name", "num_ratings", "apparent_age_avg",
                                          "apparent_age_std", "real_age"),
                 name=f"gt_avg_{folder}.csv")
  return directory


def write_utkface_folder(directory: pathlib.Path, num_images: int, seed: int = 0,
                         size: int = 40) -> pathlib.Path:
  """UTKFace-style photos AGE_GENDER_RACE_DATETIME.jpg.chip.jpg, half in a subfolder."""
  rng = np.random.default_rng(seed)
  for i in range(num_images):
    age = int(rng.integers(1, 90))
    name = f"{age}_{i % 2}_{i % 5}_2017011{i:08d}.jpg.chip.jpg"
    write_jpeg(directory / ("part2" if i % 2 else "part1") / name, age, rng, size)
  return directory


def data_config(directory, base=None, **fields):
  """The `data` section of `base` (default configs/tiny.py) reading `directory`.

  Field names with `__` reach into subsections: `csv__path="x.csv"` sets data.csv.path.
  """
  from configs import tiny

  config = (base or tiny.get_config()).data
  config.dir = str(directory)
  return set_fields(config, **fields)


def set_fields(config, **fields):
  """`config` with fields set; `__` reaches into subsections (`data__image_size=4`)."""
  for name, value in fields.items():
    *parents, key = name.split("__")
    section = config
    for parent in parents:
      section = section[parent]
    section[key] = value
  return config


def learnable_batch(mesh, size: int = 8, seed: int = 0) -> dict:
  """A global batch of 32x32 images whose brightness follows the age, so a model can learn."""
  from ageflax.core import sharding

  rng = np.random.default_rng(seed)
  ages = rng.uniform(5, 80, size).astype(np.float32)
  images = np.clip(ages[:, None, None, None] * 3 + rng.normal(0, 10, (size, 32, 32, 3)),
                   0, 255).astype(np.uint8)
  return sharding.global_batch({"image": images, "age": ages}, mesh, size)


def write_labels(directory: pathlib.Path, rows, header=("file_name", "real_age"),
                 name: str = "labels.csv") -> None:
  with open(directory / name, "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(header)
    writer.writerows(rows)


@pytest.fixture
def face_folder(tmp_path: pathlib.Path) -> pathlib.Path:
  return write_face_folder(tmp_path / "faces", 60)


def run_entry_point(args: list[str], devices: int = 1, timeout: int = 300,
                    extra_env: dict | None = None) -> subprocess.CompletedProcess:
  """Runs `python ARGS` from the repo root with `devices` forced CPU devices; a variable set
  to None in `extra_env` is left out of the environment."""
  env = subprocess_env(devices)
  env.update(extra_env or {})
  env = {name: value for name, value in env.items() if value is not None}
  return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True,
                        text=True, timeout=timeout, check=False)


def run_until_signalled(args: list[str], signum: int, after_line: str) -> tuple[int, str]:
  """Runs `python ARGS`, sends `signum` once stderr shows `after_line`; (exit status, log)."""
  process = subprocess.Popen([sys.executable, *args], cwd=REPO, env=subprocess_env(1),
                             text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
  log = []
  for line in process.stderr:
    log.append(line)
    if after_line in line:
      process.send_signal(signum)
      break
  _, rest = process.communicate(timeout=120)
  return process.returncode, "".join(log) + rest


def error_line(result: subprocess.CompletedProcess) -> str:
  """The single `error: ...` line of a run that failed cleanly (exit 1, no traceback)."""
  assert result.returncode == 1, result.stderr[-3000:]
  assert "Traceback" not in result.stderr, result.stderr[-3000:]
  lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
  assert len(lines) == 1, result.stderr[-3000:]
  return lines[0]


def tiny_train_args(data_dir, workdir, *overrides: str) -> list[str]:
  return ["train.py", "--config=configs/tiny.py", f"--config.data.dir={data_dir}",
          f"--workdir={workdir}", *overrides]


DEX_HEAD = ("--config.model.head=dex", "--config.train.loss=dex", "--config.train.label_sigma=2")


def train_tiny_run(root: pathlib.Path, name: str, *overrides: str) -> pathlib.Path:
  """A 4-step tiny run on ROOT/faces, in ROOT/NAME."""
  workdir = root / name
  trained = run_entry_point(tiny_train_args(root / "faces", workdir,
                                            "--config.train.num_steps=4", *overrides))
  assert trained.returncode == 0, trained.stderr[-3000:]
  return workdir


@pytest.fixture(scope="session")
def head_runs(tmp_path_factory) -> dict:
  """40 synthetic faces in ROOT/faces and two tiny runs on them, the affine and dex heads,
  shared by the test files that read them (tests copy a run before writing into it)."""
  from ageflax.devtools.synthetic import portraits

  root = tmp_path_factory.mktemp("head_runs")
  portraits.write_synthetic_faces(root / "faces", 40, seed=1, image_size=48)
  return {"root": root, "faces": root / "faces" / "final_files",
          "affine": train_tiny_run(root, "affine"), "dex": train_tiny_run(root, "dex", *DEX_HEAD)}


def final_arrays(workdir) -> list[np.ndarray]:
  """The parameters and BatchNorm statistics of a run's latest checkpoint, as numpy arrays."""
  import jax

  from ageflax.config import schema
  from ageflax.core import sharding
  from ageflax.train import checkpoints, steps

  checkpointer = checkpoints.Checkpointer(workdir, read_only=True)
  step = checkpointer.latest_step()
  config = schema.with_current_defaults(checkpointer.restore_config(step))
  _, abstract = steps.abstract_model_state(config, sharding.create_mesh())
  restored = checkpointer.restore_model(step, abstract)
  checkpointer.close()
  return [np.asarray(leaf) for leaf in jax.tree.leaves(restored)]


def found_face(seed: int = 0, size: int = 128) -> np.ndarray:
  """A synthetic face the detector finds (most are; some cartoon faces are not)."""
  from ageflax.data import faces
  from ageflax.devtools.synthetic import portraits

  rng = np.random.default_rng(seed)
  normaliser = faces.FaceNormaliser(64)
  for _ in range(20):
    face = np.asarray(portraits.draw_face(int(rng.integers(5, 80)), rng, size).convert("RGB"))
    if normaliser.detect(face):
      return face
  pytest.fail("the detector found none of 20 synthetic faces")
