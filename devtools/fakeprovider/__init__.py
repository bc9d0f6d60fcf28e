"""A fake LLM provider server for end-to-end tests and benchmarks.

It speaks the OpenAI, DeepSeek, Anthropic and Gemini wire formats on
127.0.0.1, with per-request chunking, delays and injected faults, and records
every request (credentials fingerprinted) for tests to assert on. No Django.

    python -m devtools.fakeprovider --port 0      # prints FAKEPROVIDER_LISTENING http://127.0.0.1:PORT
    runner, url = await start_server("127.0.0.1", 0, {"chunks": 4})

Knobs: devtools/fakeprovider/settings.py; faults: faults.py; records: recorder.py.
"""

from __future__ import annotations

from devtools.fakeprovider.server import create_app, start_server

__all__ = ["create_app", "start_server"]
