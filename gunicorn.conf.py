"""gunicorn settings read from the working directory (production: `gunicorn aiqrecon.wsgi`).

No `Server` banner: gunicorn names itself and its version on every response and has no
setting to stop it, so its response class leaves that header out here (issue 20 point 8).
"""

import gunicorn.http.wsgi as _wsgi


class _ResponseWithoutBanner(_wsgi.Response):
    def default_headers(self):
        return [h for h in super().default_headers() if not h.lower().startswith("server:")]


_wsgi.Response = _ResponseWithoutBanner

# Workers: the API's POSTs spend most of their time in Python (CPU) and the rest waiting on
# PostgreSQL and Redis; threads let a worker take another request while one waits, and
# processes let requests run on every core at once (one GIL each). WEB_WORKERS x WEB_THREADS
# should be at least the concurrent clients expected; measured with bench/bench_api.py.
import os  # noqa: E402

_cores = os.cpu_count() or 1
workers = int(os.environ.get("WEB_WORKERS") or 2 * _cores)
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS") or 2)
