"""Load-tests a running till service: clients posting one photo, requests/s and latency.

  python scripts/load_test.py --url=http://127.0.0.1:8080 --photo=face.jpg
      [--clients=8] [--requests=400] [--max_seconds=60]

Start the service first (scripts/serve.py). Prints one line: requests sent and failed,
requests per second, and the p50 and p99 latency of the answered requests. Run the client
on another machine, or mind that on the same one it takes CPU from the service.
"""

from absl import flags

from ageflax.cli import common
from ageflax.devtools.bench import service_load

_URL = flags.DEFINE_string("url", "http://127.0.0.1:8080", "The service's base URL.")
_PHOTO = flags.DEFINE_string("photo", None, "JPEG or PNG photo to post.", required=True)
_CLIENTS = flags.DEFINE_integer("clients", 8, "Concurrent clients (threads, one connection "
                                "each).", lower_bound=1)
_REQUESTS = flags.DEFINE_integer("requests", 400, "Requests in all.", lower_bound=1)
_MAX_SECONDS = flags.DEFINE_float("max_seconds", 60.0, "Stop sending after this long.",
                                  lower_bound=0.1)


@common.exit_on_user_error
def main(argv: list[str]) -> None:
  common.refuse_arguments(argv)
  body, content_type = service_load.read_photo(_PHOTO.value)
  report = service_load.run_load(_URL.value, body, content_type, _CLIENTS.value,
                                 _REQUESTS.value, _MAX_SECONDS.value)
  print(f"{_URL.value} {_PHOTO.value} ({len(body) / 1e3:.0f} kB): "
        f"{report.summary(_CLIENTS.value)}")


def run() -> None:
  """The console entry point: parses the flags and runs main."""
  common.run(main, __name__)
