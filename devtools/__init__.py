"""Development tools, apart from the product package `byok`.

- `devtools.fakeprovider`: a fake LLM provider (OpenAI, DeepSeek, Anthropic, Gemini wire formats) for
  end-to-end tests, benchmarks and `make demo`;
- `devtools.bench`: `make bench`, which measures byok against the fake provider.

Neither is imported by the product; both need the development requirements (requirements-dev.txt).
"""
