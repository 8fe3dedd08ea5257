"""The explorer's ASGI app (Starlette): a JSON + PNG API over an :class:`Explorer`, and the static page.

Routes (all ``GET`` unless noted; images and layers are query parameters, never paths)::

    /                      the page                    /static/...        its CSS and JS
    /api/model             model summary, layers       /api/images        the gallery
    POST /api/images       upload (raw image bytes)    /api/images/{id}.png  what the model sees
    /api/grid              grid facts (JSON)           /api/grid.png      the grid picture
    /api/channel           channel statistics          /api/channel.png   channel over the input
    /api/predict           top-5 classes               /api/cam(.png), /api/filters(.png) (optional views)
    /api/health            cache statistics

Every error is a 4xx JSON ``{"error": message, "status": code}``; an unexpected one is logged and
answered 500 in the same form, and the server keeps serving. Model work runs in the thread pool.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from importlib import resources
from typing import Any
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from convscope.errors import ConvscopeError, InputError, LayerNotFound, OptionError
from convscope.present.web.explorer import Explorer, Rendered, ViewOptions
from convscope.present.web.gallery import ImageNotFound, UploadTooLarge
from convscope.present.web.memory import IDLE_SECONDS, IdleTrim
from convscope.present.web.plugins import ViewUnavailable

log = logging.getLogger(__name__)

DEFAULT_MAX_UPLOAD_BYTES = 8 << 20
DEFAULT_BODY_TIMEOUT = 20.0
MAX_QUERY_CHARS = 200
# images, and the types browsers give DICOM (application/dicom) and .nii.gz (gzip) files
IMAGE_TYPES = (
    "image/",
    "application/octet-stream",
    "application/dicom",
    "application/gzip",
    "application/x-gzip",
)
_CSP = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", _CSP.encode()),
]


def static_dir() -> str:
    """The folder of the page's HTML, CSS and JS inside the installed package."""
    return str(resources.files("convscope.present.web") / "static")


def host_of(header: str) -> str:
    """The host part of a ``Host`` header, lower-cased, without port (``[::1]:8050`` -> ``[::1]``)."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[: header.find("]") + 1] if "]" in header else header
    return header.split(":", 1)[0]


class Guard:
    """Pure-ASGI middleware: refuse unknown ``Host`` headers (DNS rebinding) with a JSON 400, and add
    no-sniff, no-framing and a same-origin content security policy to every response.

    Args:
        app: The wrapped app.
        allowed_hosts: Accepted host names (``"*"`` accepts any).
    """

    def __init__(self, app: ASGIApp, allowed_hosts: Sequence[str] = ("*",)) -> None:
        self.app = app
        self.allowed = {h.lower() for h in allowed_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "*" not in self.allowed:
            host = host_of(dict(scope["headers"]).get(b"host", b"").decode("latin-1"))
            if host not in self.allowed:
                response = JSONResponse(
                    {
                        "error": f"host {host[:60]!r} is not served here; use one of "
                        f"{', '.join(sorted(self.allowed))}",
                        "status": 400,
                    },
                    400,
                )
                await response(scope, receive, send)
                return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RequestTimeout(InputError):
    """A request body did not arrive in time (answered 408, connection closed)."""


def _path_pattern() -> re.Pattern[str]:
    """Absolute paths of this machine: under a top-level folder of ``/`` or a known root (home, temp...)."""
    roots = {os.path.expanduser("~"), tempfile.gettempdir(), os.getcwd(), sys.prefix, sys.base_prefix}
    try:
        roots |= {f"/{name}" for name in os.listdir("/") if name not in ("api", "static")}
    except OSError:
        pass
    roots = {r.rstrip("/") for r in roots if r and r != "/"}
    alternatives = "|".join(re.escape(r) for r in sorted(roots, key=len, reverse=True))
    if not alternatives:
        return re.compile(r"(?!)")
    root = rf"(?<![\w./])(?:{alternatives})(?![\w.+-])"
    # a quoted path may hold spaces; an unquoted one ends at a space or punctuation
    return re.compile(rf"(?<=['\"]){root}(?:/[^'\"\n]*)?(?=['\"])|{root}(?:/[^\s'\"<>,;:()]*)?")


_PATHS = _path_pattern()


def scrub(message: str) -> str:
    """``message`` with every absolute path of the server machine cut to its last part (``.../x.png``)."""

    def short(match: re.Match[str]) -> str:
        tail = match.group(0).rstrip("/").rsplit("/", 1)[-1]
        return f".../{tail}" if tail else "..."

    return _PATHS.sub(short, message)


def _status(exc: ConvscopeError) -> int:
    if isinstance(exc, UploadTooLarge):
        return 413
    if isinstance(exc, RequestTimeout):
        return 408
    if isinstance(exc, (ImageNotFound, LayerNotFound)):
        return 404
    if isinstance(exc, ViewUnavailable):
        return 501
    return 400


async def _convscope_error(request: Request, exc: Exception) -> JSONResponse:
    code = _status(exc) if isinstance(exc, ConvscopeError) else 400
    # 408 / 413 leave a request body unread: close the connection rather than drain it
    headers = {"connection": "close"} if code in (408, 413) else None
    return JSONResponse({"error": scrub(str(exc))[:600], "status": code}, status_code=code, headers=headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    message = exc.detail if exc.status_code != 404 else f"no such page: {request.url.path[:120]}"
    return JSONResponse({"error": message, "status": exc.status_code}, status_code=exc.status_code)


async def _server_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error answering %s %s", request.method, request.url.path)
    return JSONResponse(
        {"error": scrub(f"internal error: {type(exc).__name__}: {exc}")[:300], "status": 500}, status_code=500
    )


def _param(request: Request, name: str, default: str | None = None) -> str:
    value = request.query_params.get(name, default)
    if value is None or value == "":
        raise OptionError(f"missing query parameter {name!r}")
    if len(value) > MAX_QUERY_CHARS:
        raise OptionError(
            f"query parameter {name!r} is {len(value):,} characters long "
            f"(starts {value[:40]!r}); the limit is {MAX_QUERY_CHARS}"
        )
    return value


def _optional(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    return None if value is None or value == "" else _param(request, name)


def _int(request: Request, name: str) -> int:
    text = _param(request, name)
    try:
        return int(text)
    except ValueError:
        raise OptionError(f"{name} must be an integer, got {text[:40]!r}") from None


def _float(request: Request, name: str, default: float) -> float:
    text = _optional(request, name) or str(default)
    try:
        value = float(text)
    except ValueError:
        raise OptionError(f"{name} must be a number, got {text[:40]!r}") from None
    if value != value:  # NaN
        raise OptionError(f"{name} must be a number, got {text[:40]!r}")
    return value


def _png(data: bytes) -> Response:
    return Response(data, media_type="image/png", headers={"cache-control": "private, max-age=300"})


async def _read_body(request: Request, limit: int, timeout: float = DEFAULT_BODY_TIMEOUT) -> bytes:
    """The request body, read in chunks up to ``limit`` bytes and within ``timeout`` seconds.

    Raises:
        UploadTooLarge: Declared or sent size over ``limit`` (413, before reading more than ``limit``).
        RequestTimeout: The whole body did not arrive within ``timeout`` seconds (408).
    """
    declared = request.headers.get("content-length", "").strip()
    if declared and (not declared.isascii() or not declared.isdigit()):
        raise OptionError(f"content-length {declared[:40]!r} is not a byte count")
    if declared and (len(declared) > 15 or int(declared) > limit):
        raise UploadTooLarge(f"upload of {declared} bytes is over the limit of {limit:,} bytes")
    chunks, size = [], 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise UploadTooLarge(f"upload is over the limit of {limit:,} bytes")
                chunks.append(chunk)
    except TimeoutError:
        expected = f" of {int(declared):,}" if declared else ""
        raise RequestTimeout(
            f"the upload did not arrive within {timeout:g} s ({size:,}{expected} bytes "
            "received); send the whole file at once"
        ) from None
    return b"".join(chunks)


def create_app(
    explorer: Explorer,
    *,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    allowed_hosts: Sequence[str] = ("127.0.0.1", "localhost", "[::1]"),
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
    idle_seconds: float = IDLE_SECONDS,
) -> Starlette:
    """Build the ASGI app serving ``explorer``.

    Args:
        explorer: The model session.
        max_upload_bytes: Larger uploads are refused with 413 before being read whole.
        body_timeout: An upload whose body has not fully arrived after this many seconds is answered 408.
        allowed_hosts: Accepted ``Host`` headers (guards a loopback server against DNS rebinding);
            ``("*",)`` accepts any.
        idle_seconds: After this long without requests the caches are trimmed (:class:`IdleTrim`).
    """
    ex = explorer

    def view_options(request: Request) -> ViewOptions:
        norm, cmap, channels, aspect = (_optional(request, n) for n in ("norm", "cmap", "channels", "aspect"))
        return ViewOptions.parse(norm, cmap, channels, aspect)

    async def grid_of(request: Request) -> Rendered:
        image, layer, options = _param(request, "image"), _param(request, "layer"), view_options(request)
        return await run_in_threadpool(ex.grid, image, layer, options)

    async def channel_of(request: Request) -> Rendered:
        image, layer, channel = _param(request, "image"), _param(request, "layer"), _int(request, "channel")
        cmap, alpha = _optional(request, "cmap") or "magma", _float(request, "alpha", 0.5)
        return await run_in_threadpool(ex.channel, image, layer, channel, cmap, alpha)

    async def index(request: Request) -> Response:
        return FileResponse(f"{static_dir()}/index.html", headers={"cache-control": "no-cache"})

    async def model(request: Request) -> JSONResponse:
        return JSONResponse(ex.summary())

    async def images(request: Request) -> JSONResponse:
        return JSONResponse({"images": ex.gallery.list()})

    async def upload(request: Request) -> JSONResponse:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if not ctype.startswith(IMAGE_TYPES):
            return JSONResponse(
                {"error": f"uploads must be image files; got content type {ctype[:60]!r}", "status": 415},
                status_code=415,
            )
        data = await _read_body(request, max_upload_bytes, body_timeout)
        if not data:
            raise OptionError("empty upload: send the image file's bytes as the request body")
        name = unquote(request.headers.get("x-filename", "upload")[:1000])
        entry = await run_in_threadpool(ex.gallery.add_upload, data, name)
        return JSONResponse(entry.to_dict(), status_code=201)

    async def thumbnail(request: Request) -> Response:
        return _png(await run_in_threadpool(ex.gallery.thumbnail, request.path_params["image_id"]))

    async def grid(request: Request) -> JSONResponse:
        return JSONResponse((await grid_of(request)).meta)

    async def grid_png(request: Request) -> Response:
        return _png((await grid_of(request)).png)

    async def channel(request: Request) -> JSONResponse:
        return JSONResponse((await channel_of(request)).meta)

    async def channel_png(request: Request) -> Response:
        return _png((await channel_of(request)).png)

    async def predict(request: Request) -> JSONResponse:
        return JSONResponse(await run_in_threadpool(ex.predict, _param(request, "image")))

    async def cam_of(request: Request) -> Rendered:
        image, method = _param(request, "image"), _optional(request, "method") or "gradcam"
        target, region = _optional(request, "target"), _optional(request, "region")
        return await run_in_threadpool(ex.cam, image, method, target, region)

    async def cam(request: Request) -> JSONResponse:
        return JSONResponse((await cam_of(request)).meta)

    async def cam_png(request: Request) -> Response:
        return _png((await cam_of(request)).png)

    async def filters(request: Request) -> JSONResponse:
        return JSONResponse((await run_in_threadpool(ex.filters, _param(request, "layer"))).meta)

    async def filters_png(request: Request) -> Response:
        return _png((await run_in_threadpool(ex.filters, _param(request, "layer"))).png)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True, "images": len(ex.gallery.list()), "caches": ex.cache_stats()})

    routes = [
        Route("/", index),
        Route("/api/model", model),
        Route("/api/images", images),
        Route("/api/images", upload, methods=["POST"]),
        Route("/api/images/{image_id}.png", thumbnail),
        Route("/api/grid", grid),
        Route("/api/grid.png", grid_png),
        Route("/api/channel", channel),
        Route("/api/channel.png", channel_png),
        Route("/api/predict", predict),
        Route("/api/cam", cam),
        Route("/api/cam.png", cam_png),
        Route("/api/filters", filters),
        Route("/api/filters.png", filters_png),
        Route("/api/health", health),
        Mount("/static", StaticFiles(directory=static_dir(), follow_symlink=False), name="static"),
    ]
    handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        ConvscopeError: _convscope_error,
        HTTPException: _http_error,
        Exception: _server_error,
    }
    middleware = [
        Middleware(Guard, allowed_hosts=list(allowed_hosts)),
        Middleware(IdleTrim, trim=lambda: ex.idle_trim(), idle_seconds=idle_seconds),
    ]
    return Starlette(routes=routes, middleware=middleware, exception_handlers=handlers)
