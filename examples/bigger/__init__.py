"""A bigger app, split the way a growing site is: a package with two blueprints, a site
(``site.py``: HTML pages from templates) and a JSON API with CORS (``api.py``), an old Flask app
mounted under ``/legacy`` (``legacy.py``), and compression on.

Run it from the ``examples`` folder::

    cd examples && microweb run bigger:app
    microweb routes bigger:app            # the route table, with each route's blueprint
"""
from __future__ import annotations

import logging
import os

from microweb import App, Request

HERE = os.path.dirname(os.path.abspath(__file__))
log = logging.getLogger("microweb")


def create_app() -> App:
    """The application factory: one App, its blueprints registered, the legacy app mounted."""
    from .api import api
    from .site import site

    app = App(template_folder=os.path.join(HERE, "templates"), static_folder=os.path.join(HERE, "static"),
              static_url_path="/static", compress=True)
    app.register_blueprint(site)
    app.register_blueprint(api, url_prefix="/api/v1")  # the argument wins over the blueprint's "/api"
    try:
        from .legacy import legacy
    except ImportError:  # Flask is a test dependency, not a dependency of microweb
        log.warning("Flask is not installed: /legacy is not mounted")
    else:
        app.mount("/legacy", legacy)

    @app.teardown_request
    def release(request: Request, exc: BaseException | None) -> None:
        # Where a database connection would go back to its pool, whatever happened.
        if exc is not None:
            log.info("request %s %s failed: %r", request.method, request.path, exc)

    return app


app = create_app()
