"""DeepSeek: OpenAI's wire format with a few documented differences, all as profile flags.

- `reasoning_content` beside `content` in messages and stream deltas (deepseek-reasoner):
  https://api-docs.deepseek.com/guides/reasoning_model
- usage counts cache hits in `prompt_cache_hit_tokens`:
  https://api-docs.deepseek.com/guides/kv_cache
- 402 "Insufficient Balance" (a key fault), 503 "Server Overloaded":
  https://api-docs.deepseek.com/quick_start/error_codes
- while busy it sends `: keep-alive` SSE comments (the SSE decoder drops them) and,
  for non-streaming requests, blank lines before the JSON (JSON whitespace to orjson):
  https://api-docs.deepseek.com/quick_start/rate_limit
- the API is rooted at the bare host (`/v1` is also accepted), and takes `max_tokens`;
- thinking mode (https://api-docs.deepseek.com/guides/thinking_mode): `reasoning_content`
  must come back on the assistant turns of an exchange that called tools, and is ignored
  on others (so byok sends it on the first and leaves it out of the second).
"""

from __future__ import annotations

from byok.providers.openai import OpenAIAdapter

__all__ = ["DeepSeekAdapter"]


class DeepSeekAdapter(OpenAIAdapter):
    """DeepSeek Chat Completions (deepseek-chat, deepseek-reasoner)."""

    kind = "deepseek"
    display_name = "DeepSeek"
    default_base_url = "https://api.deepseek.com"
    max_tokens_field = "max_tokens"
    reasoning_field = "reasoning_content"
    cache_hit_field = "prompt_cache_hit_tokens"
    quota_statuses = frozenset({402})
    overloaded_statuses = frozenset({503, 529})
    # https://api-docs.deepseek.com/api/create-chat-completion: text content only, response_format
    # json_object only, no top_k / parallel_tool_calls / user; thinking mode wants reasoning_content
    # back across tool calls and is switched off with {"thinking": {"type": "disabled"}}.
    accepts_images = False
    accepts_json_schema = False
    accepts_parallel_tool_calls = False
    accepts_user = False
    sends_reasoning_content = True
    thinking_switch = True
    # deepseek-reasoner (thinking mode) answers an error to logprobs / top_logprobs, and which mode
    # serves a model is DeepSeek's to say: refused here rather than failing upstream.
    # https://api-docs.deepseek.com/guides/reasoning_model
    accepts_logprobs = False
