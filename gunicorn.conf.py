"""gunicorn settings read from the working directory (production: `gunicorn aiqrecon.wsgi`).

No `Server` banner: gunicorn names itself and its version on every response and has no
setting to stop it, so its response class leaves that header out here (issue 20 point 8).
"""

import gunicorn.http.wsgi as _wsgi


class _ResponseWithoutBanner(_wsgi.Response):
    def default_headers(self):
        return [h for h in super().default_headers() if not h.lower().startswith("server:")]


_wsgi.Response = _ResponseWithoutBanner
