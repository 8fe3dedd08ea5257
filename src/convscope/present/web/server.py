"""Starting the explorer: load the model and images, bind a socket, run uvicorn (foreground or thread).

The socket is bound here, before uvicorn starts, so a busy port is a one-line error, ``port=0`` picks a
free port, and the printed URL is the one really listened on.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convscope.errors import ConvscopeError, OptionError

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (``127.0.0.0/8``, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str) -> list[str]:
    """``Host`` headers to accept: the loopback names for a loopback bind, anything otherwise."""
    if not is_loopback(host):
        return ["*"]
    named = f"[{host.strip('[]')}]" if ":" in host else host
    return sorted({"127.0.0.1", "localhost", "[::1]", named.lower()})


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port=0``: a free port chosen by the system).

    Raises:
        OptionError: Bad port, unknown host, or the port is in use (the message says what to do).
    """
    if not 0 <= port <= 65535:
        raise OptionError(f"--port {port} is not a TCP port; use 1..65535 (or 0 for any free port)")
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise OptionError(f"--host {host!r} cannot be resolved: {err}") from None
    family, kind, proto, _, address = infos[0]
    # proto must be IPPROTO_TCP (not 0): asyncio sets TCP_NODELAY on accepted sockets only then, and
    # without it every keep-alive response waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(family, kind, proto or socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as err:
        sock.close()
        if err.errno == errno.EADDRINUSE:
            raise OptionError(
                f"port {port} on {host} is already in use; choose another with --port "
                "(or --port 0 for any free port)"
            ) from None
        raise OptionError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def url_of(sock: socket.socket) -> str:
    """``http://host:port/`` of a bound socket."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def build_explorer(
    model: Any = None,
    *,
    images: str | Path | None = None,
    labels: Sequence[str] | str | None = None,
    preprocess: Any = None,
    input_shape: tuple[int, ...] | None = None,
    safe_mode: bool = True,
    max_pixels: int = 25_000_000,
    cache_mb: int = 512,
    custom_objects: Any = None,
    tokens: tuple[int, int] | None = None,
    compare: str | Path | Any = None,
    ablate: str | Path | Any = None,
) -> Any:
    """Resolve ``model`` (default: the bundled ``mnist-cnn``) and put it and its images into an :class:`Explorer`.

    Args:
        model: A :class:`~convscope.models.resolve.ResolvedModel`, a path, a zoo name or a Keras model; its
            preprocessing and class names are the ones every other command uses for it.
        images: A folder of images; default: the zoo model's own samples (digits, or its demo photos).
        labels: Class names (sequence or file) overriding the model's own.
        preprocess: Preprocessing overriding the model's own.
        tokens: ``(h, w)`` of the model's token layers (``--tokens``); ``None`` finds them from the model.
        compare: A folder written by ``convscope compare`` for this model (or its loaded result): channel
            panels show each channel's dataset shift.
        ablate: A folder written by ``convscope ablate`` for this model (or its loaded result): its layer's
            channel panels show each channel's ablation effect.

    Raises:
        OptionError: A results folder computed on another model.

    Images: ``images`` (a folder) if given; else the zoo model's sample inputs, if it has any.
    """
    from convscope.models.resolve import resolve_model
    from convscope.models.zoo import ZOO, sample_digits
    from convscope.present.web.explorer import Explorer
    from convscope.present.web.gallery import Gallery

    resolved = resolve_model(
        model if model is not None else "mnist-cnn",
        preprocess=preprocess,
        labels=labels,
        input_shape=input_shape,
        safe_mode=safe_mode,
        custom_objects=custom_objects,
    )
    zoo = ZOO.get(resolved.zoo or "")
    gallery = Gallery(resolved.spec(input_shape), resolved.preprocess, max_pixels=max_pixels)
    if images is not None:
        count = gallery.add_folder(images)
        log.info("serving %d images from %s", count, images)
    elif zoo is not None and zoo.samples:
        x, y = sample_digits(zoo.name)
        gallery.add_arrays(x, y, prefix="digit" if zoo.name == "mnist-cnn" else "class")
    elif zoo is not None and zoo.photos:  # the demo photos (chelsea, coffee, astronaut), as files would be
        from convscope.models.zoo import sample_images

        gallery.add_pictures(sample_images(zoo.name))
    from convscope.diagnose import load_ablation, load_compare

    # bad folders answer before the model runs
    shifts = load_compare(compare) if isinstance(compare, (str, Path)) else compare
    ablation = load_ablation(ablate) if isinstance(ablate, (str, Path)) else ablate
    explorer = Explorer(
        resolved, gallery, title=resolved.name, cache_mb=cache_mb, input_shape=input_shape, tokens=tokens
    )
    if shifts is not None:
        explorer.attach_compare(shifts)
    if ablation is not None:
        explorer.attach_ablation(ablation)
    return explorer


def make_server(
    app: Any, *, verbose: bool = False, header_timeout: float | None = None, body_timeout: float | None = None
) -> Any:
    """A uvicorn server for ``app`` (no lifespan, keep-alive 15 s, access log only when verbose).

    Slow clients are cut off (see :mod:`convscope.present.web.protocol`): a request's headers must arrive
    within ``header_timeout`` seconds (default 10) and its body within ``body_timeout`` (default 30), else
    the client gets 408 and the connection is closed. Headers over 16 KiB are refused with 400 (h11).
    """
    import uvicorn

    from convscope.present.web.protocol import DEFAULT_BODY_TIMEOUT, DEFAULT_HEADER_TIMEOUT, deadline_protocol

    http = deadline_protocol(header_timeout or DEFAULT_HEADER_TIMEOUT, body_timeout or DEFAULT_BODY_TIMEOUT)
    config = uvicorn.Config(
        app,
        log_level="info" if verbose else "warning",
        access_log=verbose,
        lifespan="off",
        timeout_keep_alive=15,
        server_header=False,
        http=http,
        h11_max_incomplete_event_size=16 << 10,
    )
    return uvicorn.Server(config)


def run(app: Any, sock: socket.socket, *, verbose: bool = False) -> None:
    """Serve ``app`` on ``sock`` in the foreground until Ctrl+C."""
    make_server(app, verbose=verbose).run(sockets=[sock])


@dataclass
class ServerThread:
    """A server running in a background thread (tests, benchmarks); :meth:`stop` ends it."""

    url: str
    server: Any
    thread: threading.Thread

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the server to exit and wait for its thread."""
        self.server.should_exit = True
        self.thread.join(timeout)


def start_in_thread(
    app: Any,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    timeout: float = 20.0,
    on_error: Callable[[BaseException], None] | None = None,
    header_timeout: float | None = None,
    body_timeout: float | None = None,
) -> ServerThread:
    """Start ``app`` on ``host:port`` (0 = a free port) in a daemon thread; return once it accepts.

    ``header_timeout`` / ``body_timeout``: the slow-client deadlines of :func:`make_server`.

    Raises:
        ConvscopeError: The server did not start within ``timeout`` seconds.
    """
    sock = bind(host, port)
    url = url_of(sock)
    server = make_server(app, header_timeout=header_timeout, body_timeout=body_timeout)

    def target() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # reported to the caller's hook; the thread just ends
            if on_error is not None:
                on_error(exc)
            raise
        finally:
            sock.close()

    thread = threading.Thread(target=target, name="convscope-web", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise ConvscopeError(f"the explorer server did not start at {url}")
        time.sleep(0.02)
    return ServerThread(url, server, thread)
