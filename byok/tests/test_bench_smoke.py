"""`make bench` cannot rot: its statistics, its load generator, the in-process phase and the report, in small.

A real fake provider (subprocess) answers a handful of requests; the
websocket ramp runs against a stub speaking the chat socket's frames, so no
daphne is started here (the end-to-end suite does that). Well under 20 s.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
from datetime import UTC, datetime

import pytest
from aiohttp import web

from byok.tests.live import start_fake_provider
from devtools.bench import __main__ as cli
from devtools.bench.http import HttpRun, Plan, baseline_targets, gateway_targets, measure_openai
from devtools.bench.inprocess import measure_inprocess
from devtools.bench.load import Target, chat_once, make_client, run_load, stream_once
from devtools.bench.report import ANALYSIS_MARKER, BenchData, ServerRun, render, targets, write
from devtools.bench.servers import read_memory, summarize_profile
from devtools.bench.setup import BENCH_KEY, MODEL, register_bench_providers
from devtools.bench.stats import LoadResult, Sample, added, per_chunk, percentile, ratio, summarize
from devtools.bench.websocket import ramp


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    fake = start_fake_provider(tmp_path_factory.mktemp("bench"))
    yield fake
    fake.stop()


# -- statistics --------------------------------------------------------------------------------


def test_percentiles_interpolate_between_closest_ranks():
    assert percentile([3, 1, 2], 50) == 2
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile(list(range(101)), 99) == 99
    assert percentile([5.0], 99) == 5.0
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError):
        percentile([1], 101)


def test_summaries_and_ratios():
    s = summarize([0.001, None, 0.003, 0.002])
    assert (s.n, s.median_ms, s.low, s.high) == (3, 2.0, 0.001, 0.003)
    assert s.to_dict()["median_ms"] == 2.0
    assert summarize([None]).n == 0 and math.isnan(summarize([]).median)
    assert added(3.0, 1.0) == 2.0
    assert ratio(6.0, 2.0) == 3.0 and math.isnan(ratio(1.0, 0.0)) and math.isnan(ratio(math.nan, 1.0))


def test_samples_give_chunk_intervals_and_load_results_count_errors():
    stream = Sample(True, 0.5, ttft=0.1, last=0.4, chunks=4)
    assert stream.chunk_interval == pytest.approx(0.1)
    assert Sample(True, 0.1, chunks=1).chunk_interval is None
    result = LoadResult([stream, Sample(False, 0.2, error="http 502"), Sample(False, 0.1, status=500)], wall=2.0)
    assert (len(result.ok), result.errors, result.throughput) == (1, 2, 0.5)
    assert result.error_kinds() == {"http 502": 1, "500": 1}
    assert per_chunk(result.samples).median == pytest.approx(0.1)
    assert result.latency().n == 1 and result.ttft().median == 0.1 and result.chunk().n == 1
    assert math.isnan(LoadResult().throughput)


async def test_run_load_stops_starting_requests_at_its_time_limit():
    calls = 0

    async def one() -> Sample:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return Sample(True, 0.05)

    result = await run_load(one, total=10_000, concurrency=4, time_limit=0.2)
    assert result.stopped_by_time and 4 <= calls < 100 and len(result.samples) == calls


def test_profiles_are_summarized_by_leaf_and_package():
    collapsed = "\n".join(
        [
            "run (twisted/internet/base.py:10);view (byok/api/chat_views.py:3);loads (json/decoder.py:5) 6",
            "run (twisted/internet/base.py:10);select (selectors.py:1) 4",
            "garbage line",
        ]
    )
    profile = summarize_profile(collapsed)
    assert profile.samples == 10
    assert profile.leaves[0] == ("loads (json/decoder.py)", 60.0)
    assert ("byok", 60.0) in profile.packages and ("json", 60.0) in profile.packages
    assert summarize_profile("").error == "no samples"


def test_memory_is_read_from_proc():
    mem = read_memory(os.getpid())
    assert mem["VmRSS"] > 1 and mem["VmHWM"] >= mem["VmRSS"]
    assert read_memory(2**22 + 12345) == {}


def test_the_mock_upstream_streams_one_chunk_per_read():
    from devtools.bench.chunks import mock_client, sse_pieces

    pieces = sse_pieces(3)
    assert len(pieces) == 3 + 4 and pieces[-1] == b"data: [DONE]\n\n"

    async def read(url: str) -> list[bytes]:
        async with mock_client() as client, client.stream("POST", url, json={}) as response:
            return [raw async for raw in response.aiter_raw()]

    assert asyncio.run(read("http://x/cfg/chunks=3/v1/chat/completions")) == pieces
    assert len(asyncio.run(read("http://x/v1/chat/completions"))) == 8 + 4


# -- the command line ----------------------------------------------------------------------------


def test_the_command_line_and_its_ramp():
    args = cli.parse_args(["--quick", "--no-redis", "--ws-max", "1600", "--only", "inprocess, ws"])
    assert args.quick and args.no_redis and args.ws_max == 1600 and args.phases == {"inprocess", "ws"}
    assert cli.parse_args([]).phases == set(cli.PHASES)
    with pytest.raises(SystemExit):
        cli.parse_args(["--only", "everything"])
    assert cli.ws_steps(5000) == (1, 100, 500, 1000, 2500, 5000)
    assert cli.ws_steps(8000) == (1, 100, 500, 1000, 2500, 5000, 7500, 8000)
    assert cli.ws_steps(300) == (1, 100, 300)
    assert cli.parse_args([]).servers == "uvicorn,granian"
    assert cli.redis_url_for(args, "redis://127.0.0.1:6379/0") is None
    unreachable = cli.parse_args(["--redis-url", "redis://127.0.0.1:1/0"])
    assert cli.redis_url_for(unreachable, None) is None


# -- against the fake provider -------------------------------------------------------------------


async def test_the_load_generator_tells_answers_from_failures(fake):
    headers = {"Authorization": f"Bearer {BENCH_KEY}"}
    async with make_client("httpx") as client:
        ok = await stream_once(client, Target(f"{fake.url}/cfg/chunks=5/v1/chat/completions", MODEL, headers))
        assert ok.ok and ok.chunks == 5 and ok.ttft is not None
        assert (await chat_once(client, Target(f"{fake.url}/v1/chat/completions", MODEL, headers))).ok
        refused = await chat_once(client, Target(f"{fake.url}/cfg/fault=500/v1/chat/completions", MODEL, headers))
        assert (refused.ok, refused.status, refused.error) == (False, 500, "http 500")
        broken = await stream_once(
            client, Target(f"{fake.url}/cfg/fault=stream_error/v1/chat/completions", MODEL, headers)
        )
        assert (broken.ok, broken.error) == (False, "stream error event")
        denied = await stream_once(client, Target(f"{fake.url}/cfg/fault=503/v1/chat/completions", MODEL, headers))
        assert (denied.ok, denied.status) == (False, 503)
        gone = await chat_once(client, Target("http://127.0.0.1:1/v1/chat/completions", MODEL, headers))
        assert not gone.ok and gone.error
        gone = await stream_once(client, Target("http://127.0.0.1:1/v1/chat/completions", MODEL, headers))
        assert not gone.ok and gone.error
    with pytest.raises(ValueError):
        make_client("curl")


@pytest.mark.django_db(transaction=True)
def test_a_small_bench_run_measures_and_reports(fake, tmp_path, settings):
    settings.BYOK = {**settings.BYOK, "ALLOW_PRIVATE_BASE_URLS": True}  # the fake provider is on loopback
    register_bench_providers(fake.url)
    register_bench_providers(fake.url)  # idempotent
    inprocess = [
        asyncio.run(measure_inprocess(fake.url, t, requests=5, streams=2, warmup=1, chunk_streams=2))
        for t in ("default", "aiohttp")
    ]
    for r in inprocess:
        assert r.errors == 0 and r.chunks_per_stream == 100
        assert r.handler_chat.n == 5 and r.handler_ttft.n == 2
        assert not math.isnan(
            r.added_chat_median_ms
            + r.added_chat_p99_ms
            + r.added_ttft_ms
            + r.added_chunk_us
            + r.added_chat_cpu_ms
            + r.parsing_chunk_us
            + r.added_interval_us
        )
        assert r.chunk_cost.handler_us > 0 and r.chunk_cost.direct_us > 0 and r.chunk_cost.parser_us > 0

    baseline = asyncio.run(
        measure_openai("baseline", baseline_targets(fake.url), Plan.smoke(), server_pid=fake.proc.pid)
    )
    assert {k: len(v.samples) for k, v in baseline.results.items()} == {
        ("chat", 1): 5,
        ("chat", 4): 12,
        ("stream", 1): 2,
        ("stream", 4): 4,
        ("paced", 1): 2,
    }
    assert all(r.errors == 0 for r in baseline.results.values())
    assert baseline.memory["VmHWM"] > 0
    assert baseline.cpu[("chat", 4)] >= 0 and baseline.cpu_per_chunk() is not None  # ticks of 10 ms: may be 0
    assert HttpRun("x", "aiohttp").cpu_per_chunk() is None
    assert gateway_targets("http://gw", "tok").stream.model == f"bench20/{MODEL}"
    assert Plan.quick().time_limit < Plan().time_limit
    with pytest.raises(RuntimeError, match="no warm-up request succeeded"):
        asyncio.run(measure_openai("nowhere", gateway_targets("http://127.0.0.1:1", "t"), Plan.smoke()))

    ws = asyncio.run(_ramp_against_stub())
    assert ws.held == 5 and ws.steps[-1].passed and len(ws.single) == 1 and ws.memory["VmRSS"] > 0

    # The same numbers, shown as if a gateway had produced them, exercise every table of the report.
    stand_in = HttpRun("byok HTTP, stand-in", "aiohttp", dict(baseline.results), {"VmHWM": 100.0}, dict(baseline.cpu))
    at50 = {("chat", 50): baseline.results[("chat", 4)]}
    one = HttpRun("byok HTTP, stand-in, Redis state", "aiohttp", at50, {"VmHWM": 90.0, "processes": 1.0})
    two = HttpRun("byok HTTP, stand-in, 2 workers", "aiohttp", at50, {"VmHWM": 90.0, "processes": 3.0})
    data = BenchData(
        started=datetime.now(UTC),
        mode="quick",
        seconds=12.0,
        baseline={"aiohttp": baseline},
        inprocess=inprocess,
        gateways=[stand_in],
        ws=ws,
        ws_setup={"chunks": 3, "delay_ms": 1, "direct_s": 0.0, "transport": "aiohttp"},
        notes=["Redis figures: not measured."],
        servers=[ServerRun("uvicorn", stand_in, ws)],
        workers={1: one, 2: two},
    )
    stand_in.profile = summarize_profile("a (byok/x.py:1) 3")
    text = render(data)
    for heading in (
        "## Targets",
        "## Side by side",
        "## Baseline",
        "## `BYOKHandler` in process",
        "## HTTP",
        "## Servers",
        "## Workers",
        "## Websocket",
        "## Where the time goes",
    ):
        assert heading in text
    assert "Redis figures: not measured." in text and " cores, " in text
    assert "| uvicorn | " in text and "stand-in, 2 workers" in text
    names = {t.name: t for t in targets(data)}
    assert names["websocket: concurrent streaming sockets, one process, every answer complete"].met is False
    assert names["HTTP (stand-in): errors at c=200"].measured == "not measured"
    assert names["HTTP (stand-in): server CPU per non-streaming request (c=50)"].measured == "not measured"
    assert names["HTTP (stand-in): added latency at c=1, median"].met is not None
    assert names["HTTP (stand-in): added time to first token (c=1)"].met is not None
    assert names["HTTP (stand-in): peak RSS"].met is True
    assert (
        names["BYOK_WORKERS=2 with Redis: non-streaming req/s at c=50 over one worker's"].met is False
    )  # same figures: 1×
    assert names["in process (default): added latency, median"].met is not None

    out = tmp_path / "benchmarks.md"
    write(out, text)
    assert ANALYSIS_MARKER in out.read_text() and "## Analysis" in out.read_text()
    out.write_text(out.read_text().replace("(to be written after a full run)", "Kept by hand."))
    write(out, render(BenchData(started=datetime.now(UTC), mode="full")))
    assert "Kept by hand." in out.read_text() and "not measured" in out.read_text()


async def _ramp_against_stub():
    """The ramp against a stand-in speaking the chat socket's frames (auth, chat.ready, deltas, done)."""

    async def socket(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type != web.WSMsgType.TEXT:  # as byok's consumer: binary frames are refused
                await ws.send_json({"type": "chat.error", "id": None, "code": "bad_frame"})
                continue
            frame = json.loads(msg.data)
            if frame["type"] == "auth":
                ok = frame["token"] == "good"
                await ws.send_json(
                    {"type": "chat.ready"} if ok else {"type": "chat.error", "id": None, "code": "unauthenticated"}
                )
            elif frame["type"] == "chat.request":
                await ws.send_json({"type": "chat.notice", "event": "hello"})
                for i in range(3):
                    await ws.send_json({"type": "chat.delta", "id": frame["id"], "text": f"w{i} "})
                await ws.send_json(
                    {
                        "type": "chat.done" if frame["model"] != "fail" else "chat.error",
                        "id": frame["id"],
                        "code": "upstream_error",
                    }
                )
        return ws

    app = web.Application()
    app.router.add_get("/ws/chat/", socket)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"ws://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/ws/chat/"
    try:
        refused = await ramp(url, "bad", steps=(2,), model="m", direct_s=0.0, chunks=3)
        assert refused.held == 0 and "2 of 2 sockets failed" in refused.stopped
        failing = await ramp(url, "good", steps=(1, 2), model="fail", direct_s=0.0, chunks=3)
        assert failing.held == 0 and failing.steps[0].errors == {"upstream_error": 1}
        timed = await ramp(url, "good", steps=(1, 2), model="m", direct_s=0.0, chunks=3, time_limit=0.0)
        assert "time limit" in timed.stopped and len(timed.steps) == 1
        return await ramp(
            url,
            "good",
            steps=(1, 5),
            model="m",
            direct_s=0.0,
            chunks=3,
            server_pid=os.getpid(),
            single_model="m",
            singles=1,
        )
    finally:
        await runner.cleanup()


def test_the_metering_bench_measures_both_modes_with_and_without_the_log_line():
    from devtools.bench import metering

    results = metering.run(n=200)
    assert len(results) == 4
    assert all(0 < us < 10_000 for us in results.values()), results
