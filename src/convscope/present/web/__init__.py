"""The browser explorer: ``convscope serve MODEL`` (needs ``pip install convscope[web]``).

A Starlette app served by uvicorn, with a plain HTML/CSS/JS page shipped in ``static/`` (no CDN, no build
step). The pieces, in the order a request meets them:

* :mod:`~convscope.present.web.app`: routes, limits, JSON errors, security headers;
* :mod:`~convscope.present.web.explorer`: one model, one extractor, cached activations and pictures;
* :mod:`~convscope.present.web.gallery`: samples, one served folder, uploads (ids, never paths);
* :mod:`~convscope.present.web.views`: grid geometry, channel statistics, top-k (pure numpy);
* :mod:`~convscope.present.web.plugins`: optional CAM and filter views, shown when installed;
* :mod:`~convscope.present.web.server`: socket binding, uvicorn, background server for tests;
* :mod:`~convscope.present.web.protocol`: HTTP/1.1 with header and body deadlines (slow clients get 408).

Example:
    >>> from convscope.present.web.server import build_explorer, start_in_thread
    >>> from convscope.present.web.app import create_app
    >>> handle = start_in_thread(create_app(build_explorer("mnist-cnn")))
    >>> handle.url, handle.stop()

Importing this package imports neither Keras nor the web framework.
"""

from __future__ import annotations

__all__: list[str] = []
