"""An I/O-free Server-Sent Events decoder following the WHATWG rules.

Feed it bytes exactly as they arrive, split anywhere (mid-line, between CR and
LF, inside a multi-byte UTF-8 character); it returns each event once its
blank line has arrived:

    decoder = SSEDecoder()
    for chunk in body_chunks:
        for event in decoder.feed(chunk):
            handle(event.event, event.data)
    for event in decoder.close():
        handle(event.event, event.data)

Rules kept from https://html.spec.whatwg.org/multipage/server-sent-events.html
#event-stream-interpretation: CR, LF and CRLF all end a line; a leading BOM is
dropped; lines starting with ':' are comments; `data` lines join with '\\n';
one space after the colon is removed; `id` containing NUL is ignored; `retry`
must be all digits; an event with no data is not dispatched. One leniency:
`close()` dispatches a last event even if the body ended without its blank
line, since several providers end their streams that way.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

__all__ = ["SSEDecoder", "SSEEvent"]

_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event. `event` defaults to "message" as the spec says."""

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Bytes in, `SSEEvent`s out; keeps only the unfinished line and event between calls."""

    def __init__(self) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")("replace")
        self._started = False
        self._skip_lf = False  # the previous chunk ended in CR; a leading LF belongs to it
        self._partial = ""
        self._data: list[str] = []
        self._event = ""
        self._last_id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        return self._feed_text(self._utf8.decode(chunk))

    def close(self) -> list[SSEEvent]:
        """End of body: finish the last line and, leniently, the last event."""
        events = self._feed_text(self._utf8.decode(b"", final=True))
        if self._partial:
            line, self._partial = self._partial, ""
            self._line(line, events)
        self._dispatch(events)
        return events

    def _feed_text(self, text: str) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        if not text:
            return events
        if not self._started:
            self._started = True
            if text[0] == "\ufeff":
                text = text[1:]
        if self._skip_lf:
            self._skip_lf = False
            if text.startswith("\n"):
                text = text[1:]
        if text.endswith("\r"):
            # CR may be the first half of CRLF: end the line now, drop a leading LF next time.
            self._skip_lf = True
            text = text[:-1] + "\n"
        lines = _LINE_END.split(self._partial + text)
        self._partial = lines.pop()
        for line in lines:
            self._line(line, events)
        return events

    def _line(self, line: str, events: list[SSEEvent]) -> None:
        if not line:
            self._dispatch(events)
            return
        if line[0] == ":":
            return
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._last_id = value
        elif name == "retry":
            if value.isascii() and value.isdigit():
                self._retry = int(value)

    def _dispatch(self, events: list[SSEEvent]) -> None:
        if self._data:
            events.append(SSEEvent("\n".join(self._data), self._event or "message", self._last_id, self._retry))
        self._data = []
        self._event = ""
