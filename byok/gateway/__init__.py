"""The request path: everything between a front end's parsed request and a provider's adapter.

handler       BYOKHandler: route, chat, stream (the one service every front end calls)
config_cache  the cached configuration snapshot (providers, keys, policies) and its reload
keypool       choosing a usable key from a provider's pool
retry         backoff, Retry-After and what is worth retrying
streaming     opening an upstream stream and reading it up to its first token
upstream      the pooled httpx clients and transport-error mapping
usage         the usage-record writer
"""
