"""The WHATWG event-stream rules, one by one, and byte-split invariance over the corpus.

Rules: https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from byok.providers.sse import SSEDecoder, SSEEvent
from byok.tests.providers.replay import CORPUS, split_at

SSE_FIXTURES = sorted(CORPUS.glob("*.sse"))


def decode(*chunks: bytes) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    return events + decoder.close()


def test_it_dispatches_an_event_at_a_blank_line():
    decoder = SSEDecoder()
    assert decoder.feed(b"data: hello\n") == []
    assert decoder.feed(b"\n") == [SSEEvent("hello")]


def test_it_joins_multi_line_data_with_newlines():
    assert decode(b"data: one\ndata: two\ndata:\ndata: three\n\n") == [SSEEvent("one\ntwo\n\nthree")]


def test_it_reads_the_event_type_and_resets_it_after_dispatch():
    events = decode(b"event: delta\ndata: a\n\ndata: b\n\n")
    assert [(e.event, e.data) for e in events] == [("delta", "a"), ("message", "b")]


def test_it_keeps_the_last_event_id_across_events():
    events = decode(b"id: 7\ndata: a\n\ndata: b\n\nid\ndata: c\n\n")
    assert [e.id for e in events] == ["7", "7", ""]


def test_it_ignores_an_id_containing_nul():
    events = decode(b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n")
    assert [e.id for e in events] == ["1", "1"]


@pytest.mark.parametrize(
    ("line", "retry"),
    [
        (b"retry: 1500", 1500),
        (b"retry: 15x", None),
        (b"retry: -1", None),
        (b"retry: 1.5", None),
        (b"retry:", None),
        ("retry: ١٢".encode(), None),
    ],
)
def test_it_accepts_retry_only_when_it_is_all_ascii_digits(line, retry):
    assert decode(line + b"\ndata: x\n\n")[0].retry == retry


def test_it_ignores_comments_such_as_keep_alives():
    assert decode(b": keep-alive\n\n: ping\ndata: x\n: more\n\n") == [SSEEvent("x")]


@pytest.mark.parametrize("eol", [b"\n", b"\r", b"\r\n"], ids=["LF", "CR", "CRLF"])
def test_it_accepts_every_line_ending(eol):
    body = b"event: e" + eol + b"data: a" + eol + b"data: b" + eol + eol + b"data: c" + eol + eol
    assert decode(body) == [SSEEvent("a\nb", "e"), SSEEvent("c")]


def test_it_accepts_mixed_line_endings():
    assert decode(b"data: a\r\ndata: b\rdata: c\n\r\n") == [SSEEvent("a\nb\nc")]


def test_a_cr_at_the_end_of_a_chunk_and_an_lf_at_the_start_of_the_next_are_one_line_end():
    # If the pair were read as two line ends, the event would be dispatched early (and "b" lost from it).
    assert decode(b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n") == [SSEEvent("a\nb")]


def test_a_lone_cr_at_the_end_of_a_chunk_still_ends_the_line():
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\r") == [SSEEvent("a")]
    assert decoder.feed(b"data: b\n\n") == [SSEEvent("b")]


def test_it_drops_a_leading_bom_once():
    assert decode(b"\xef\xbb\xbfdata: a\n\n") == [SSEEvent("a")]
    assert decode(b"\xef\xbb", b"\xbfdata: a\n\n") == [SSEEvent("a")]
    # A BOM later in the stream is data, and a second leading BOM makes the first line's field unknown.
    assert decode(b"data: \xef\xbb\xbfa\n\n") == [SSEEvent("\ufeffa")]
    assert decode(b"\xef\xbb\xbf\xef\xbb\xbfdata: a\n\n") == []


def test_a_field_without_a_colon_has_an_empty_value():
    assert decode(b"data\n\n") == [SSEEvent("")]
    assert decode(b"data\ndata\n\n") == [SSEEvent("\n")]


def test_it_strips_only_one_leading_space():
    assert decode(b"data:  two\n\n") == [SSEEvent(" two")]
    assert decode(b"data:none\n\n") == [SSEEvent("none")]
    assert decode(b"data: trailing \n\n") == [SSEEvent("trailing ")]


def test_colons_after_the_first_belong_to_the_value():
    assert decode(b'data: {"a": "b:c"}\n\n') == [SSEEvent('{"a": "b:c"}')]


def test_it_ignores_unknown_fields_and_field_names_with_spaces():
    assert decode(b"foo: bar\ndata : x\n data: y\ndata: z\n\n") == [SSEEvent("z")]


def test_it_dispatches_nothing_without_data():
    assert decode(b"event: ping\n\nid: 3\n\nretry: 10\n\n") == []
    assert decode(b"\n\n\n") == []


def test_an_event_type_without_data_does_not_leak_into_the_next_event():
    assert decode(b"event: ping\n\ndata: x\n\n") == [SSEEvent("x", "message")]


def test_close_dispatches_a_last_event_without_its_blank_line():
    decoder = SSEDecoder()
    assert decoder.feed(b"data: first\n\ndata: last") == [SSEEvent("first")]
    assert decoder.close() == [SSEEvent("last")]
    assert decode(b"data: last\n") == [SSEEvent("last")]
    assert decode(b"data: last\r") == [SSEEvent("last")]


def test_close_on_an_empty_body_yields_nothing():
    assert decode() == []
    assert decode(b"") == []


def test_it_reassembles_utf8_split_inside_a_character():
    body = "data: 18°C — 晴れ 🌤\n\n".encode()
    expected = [SSEEvent("18°C — 晴れ 🌤")]
    for cut in range(1, len(body)):
        assert decode(body[:cut], body[cut:]) == expected, cut
    assert decode(*[body[i : i + 1] for i in range(len(body))]) == expected


def test_invalid_utf8_becomes_replacement_characters_rather_than_an_error():
    assert decode(b"data: a\xffb\n\n") == [SSEEvent("a\ufffdb")]


@pytest.mark.parametrize("path", SSE_FIXTURES, ids=lambda p: p.stem)
def test_every_corpus_stream_decodes_the_same_fed_one_byte_at_a_time(path: Path):
    body = path.read_bytes()
    whole = decode(body)
    assert whole, "every corpus stream holds at least one event"
    decoder = SSEDecoder()
    events = [event for i in range(len(body)) for event in decoder.feed(body[i : i + 1])]
    assert events + decoder.close() == whole


@pytest.mark.parametrize("path", SSE_FIXTURES, ids=lambda p: p.stem)
@settings(max_examples=50, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_corpus_stream_decodes_the_same_however_its_bytes_are_split(path: Path, data: st.DataObject):
    body = path.read_bytes()
    n = len(body)
    # Cuts anywhere, plus cuts clustered in one region so neighbouring bytes (CR LF, UTF-8 sequences) part too.
    start = data.draw(st.integers(0, n), label="region")
    cuts = data.draw(st.lists(st.integers(0, n), max_size=40), label="cuts")
    cuts += data.draw(st.lists(st.integers(start, min(n, start + 24)), max_size=24), label="clustered")
    assert decode(*split_at(body, cuts)) == decode(body)
