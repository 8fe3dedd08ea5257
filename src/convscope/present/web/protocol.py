"""HTTP/1.1 with deadlines: uvicorn's h11 protocol plus a deadline for a request's headers and one for its
body, so a slow client (a slowloris, a POST that declares 5,000 bytes and sends 4) cannot hold a connection.

uvicorn closes idle keep-alive connections, but once a client has sent part of a request line or headers,
or a request's headers and part of its body, it waits for the rest forever. Here:

* a new connection, or one that starts sending a request, must finish the request's headers within
  ``header_timeout`` seconds (measured from the first byte, not reset by later bytes);
* a request with a body must deliver all of it within ``body_timeout`` seconds of its headers.

On expiry the client gets ``408 Request Timeout`` (JSON, ``connection: close``) when no response has started
(a connection that sent nothing is simply closed), and the connection is closed. Other connections are not
affected: everything here runs on timers of the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_BODY_TIMEOUT = 30.0


def timeout_response(message: str) -> bytes:
    """The raw bytes of a JSON ``408`` answer that closes the connection."""
    body = json.dumps({"error": message, "status": 408}).encode()
    head = (
        b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
        b"content-length: %d\r\n\r\n" % len(body)
    )
    return head + body


class DeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with header and body deadlines (set by :func:`deadline_protocol`)."""

    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    body_timeout: float = DEFAULT_BODY_TIMEOUT

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._phase: str | None = None
        self._partial = False

    # -- timers -------------------------------------------------------------------------------------------
    def _arm(self, phase: str) -> None:
        self._disarm()
        seconds = self.header_timeout if phase == "headers" else self.body_timeout
        self._phase = phase
        self._deadline = self.loop.call_later(seconds, self._expire, phase)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline, self._phase = None, None

    def _track(self) -> None:
        """Follow the client's side of the h11 state machine: headers pending, body pending, or done."""
        state = self.conn.their_state
        if state is h11.IDLE:
            if self._phase == "body":
                self._disarm()
        elif state is h11.SEND_BODY:
            if self._phase != "body":
                self._arm("body")
        else:
            self._disarm()

    def _expire(self, phase: str) -> None:
        self._deadline, self._phase = None, None
        if self.transport.is_closing():
            return
        cycle = self.cycle if phase == "body" else None
        answer = (phase == "headers" and self._partial) or (cycle is not None and not cycle.response_started)
        log.info(
            "closing a connection from %s: request %s not received within %g s",
            self.client,
            phase,
            self.header_timeout if phase == "headers" else self.body_timeout,
        )
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the app's receive() now reports a disconnect; its sends are dropped
            cycle.message_event.set()
        if answer:
            seconds = self.header_timeout if phase == "headers" else self.body_timeout
            what = "request headers" if phase == "headers" else "request body"
            self.transport.write(
                timeout_response(
                    f"the {what} did not arrive within {seconds:g} s; send the whole request at once"
                )
            )
        self.transport.close()

    # -- protocol hooks -----------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm("headers")  # a connection that never sends a full request is closed

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:
            self._partial = True
            if self._phase != "headers":
                self._arm("headers")
        super().data_received(data)

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:
            self._partial = False
        if not self.transport.is_closing():
            self._track()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def deadline_protocol(
    header_timeout: float = DEFAULT_HEADER_TIMEOUT, body_timeout: float = DEFAULT_BODY_TIMEOUT
) -> type[DeadlineH11Protocol]:
    """A :class:`DeadlineH11Protocol` class with these deadlines (seconds), for ``uvicorn.Config(http=)``."""
    return type(
        "DeadlineH11Protocol",
        (DeadlineH11Protocol,),
        {"header_timeout": float(header_timeout), "body_timeout": float(body_timeout)},
    )
