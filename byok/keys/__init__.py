"""Gateway keys and teams (issue 14): secrets, allow-lists, the cached lookup, the audited store.

- `secret`: make a `byok_…` key, its lookup id and digest; read one from a header.
- `grant`: what a caller may do (key and team merged), pure, for the front ends and the handler.
- `patterns`: model allow-list patterns (`openai/*`, `gpt-4o-mini`).
- `lookup`: the hot path: a cached, explicitly invalidated key lookup.
- `store`: create / change / revoke keys and teams, audited, announced to every process.
- `tokens`: DRF API tokens stored hashed.
"""
