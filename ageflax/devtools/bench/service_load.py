"""A load test of the till service: clients posting one photo over and over, timed.

Each client is a thread with its own HTTP connection (httpx, keep-alive) that posts the
photo to /v1/estimate until the request count or the time limit is reached; the report
gives requests per second and the latency percentiles of the answered requests.
"""

import dataclasses
import itertools
import threading
import time

import httpx
import numpy as np

from ageflax.core.errors import DataError
from ageflax.data import image_files

_CONTENT_TYPES = {"jpeg": "image/jpeg", "png": "image/png"}


@dataclasses.dataclass(frozen=True)
class LoadReport:
  """What a load test measured: requests sent, the failures among them, and the timings."""

  requests: int
  failures: int
  seconds: float
  latencies: np.ndarray  # seconds of each answered (2xx) request
  first_failure: str | None

  def summary(self, clients: int) -> str:
    p50, p99 = (np.percentile(self.latencies, q) * 1e3 if len(self.latencies) else float("nan")
                for q in (50, 99))
    line = (f"{self.requests:,} requests ({self.failures:,} failed) in {self.seconds:.1f} s "
            f"by {clients} clients: {self.requests / self.seconds:.1f} requests/s; latency "
            f"p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    return line + (f"; first failure: {self.first_failure}" if self.first_failure else "")


def read_photo(path: str) -> tuple[bytes, str]:
  """The bytes of a JPEG or PNG file and its Content-Type; DataError naming the file."""
  try:
    with open(path, "rb") as f:
      body = f.read()
  except OSError as e:
    raise DataError(f"--photo={path}: cannot read it ({e.strerror})") from None
  image_format = image_files.sniff_format(body[:16])
  if image_format not in _CONTENT_TYPES:
    raise DataError(f"--photo={path}: not a JPEG or PNG file")
  return body, _CONTENT_TYPES[image_format]


def run_load(url: str, body: bytes, content_type: str, clients: int, requests: int,
             max_seconds: float) -> LoadReport:
  """Posts `body` to URL/v1/estimate `requests` times from `clients` threads, stopping
  early after `max_seconds`."""
  endpoint = url.rstrip("/") + "/v1/estimate"
  _check_reachable(url)
  tickets = itertools.count()  # next() on a count is atomic under the GIL
  results: list[tuple[float | None, str | None]] = []
  lock = threading.Lock()
  start = time.perf_counter()
  deadline = start + max_seconds

  def client() -> None:
    with httpx.Client(timeout=60, headers={"Content-Type": content_type}) as session:
      while next(tickets) < requests and time.perf_counter() < deadline:
        outcome = _post(session, endpoint, body)
        with lock:
          results.append(outcome)

  threads = [threading.Thread(target=client) for _ in range(clients)]
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join()
  seconds = time.perf_counter() - start
  latencies = np.array([latency for latency, _ in results if latency is not None])
  failures = [problem for _, problem in results if problem is not None]
  return LoadReport(len(results), len(failures), seconds, latencies,
                    failures[0] if failures else None)


def _post(session: httpx.Client, endpoint: str, body: bytes) -> tuple[float | None, str | None]:
  """(latency, None) for an answered request, (None, why) for a failed one."""
  began = time.perf_counter()
  try:
    response = session.post(endpoint, content=body)
  except httpx.HTTPError as e:
    return None, f"{type(e).__name__}: {e}"
  if response.status_code >= 300:
    return None, f"HTTP {response.status_code}: {response.text[:200]}"
  return time.perf_counter() - began, None


def _check_reachable(url: str) -> None:
  try:
    httpx.get(url.rstrip("/") + "/healthz", timeout=10).raise_for_status()
  except httpx.HTTPError as e:
    raise DataError(f"--url={url}: the service does not answer /healthz ({e})") from None
