"""The face normaliser's benchmark on a few synthetic faces, and its script's one line."""

from conftest import run_entry_point

from ageflax.config import defaults
from ageflax.data import faces, layouts
from ageflax.devtools.bench import faces as face_bench
from ageflax.devtools.synthetic import portraits


def test_the_figures_count_what_the_detector_found(tmp_path):
  portraits.write_synthetic_faces(tmp_path / "faces", 6, seed=0, image_size=96)
  data = defaults.get_config().data
  data.dir = str(tmp_path / "faces")
  records = layouts.read_faces(data).records
  figures = face_bench.measure(records, faces.FaceNormaliser(64))
  assert figures.photos == 6 and figures.photos_per_second > 0
  normaliser = faces.FaceNormaliser(64)
  found = [normaliser.detect(face_bench.load_upright(r.path)) for r in records]
  assert figures.with_face == sum(bool(f) for f in found)
  assert figures.with_several == sum(len(f) > 1 for f in found)
  assert "photos/s on one thread" in figures.describe()
  result = run_entry_point(["scripts/benchmark_faces.py", f"--data_dir={tmp_path / 'faces'}",
                            "--num_photos=3"])
  assert result.returncode == 0, result.stderr[-2000:]
  assert "3 photos:" in result.stdout
