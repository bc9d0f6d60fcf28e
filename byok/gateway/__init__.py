"""The request path: everything between a front end's parsed request and a provider's adapter.

    front end -> handler.route / chat / stream -> routing -> budgets.admit -> failover -> upstream -> adapter

handler       BYOKHandler: route, chat, stream (the one service every front end calls), get_handler()
routing       Target and route(): which providers and models a request goes to, from the snapshot alone
failover      the failover loop: what each error class does to keys, retries and targets
upstream      Upstream.send() / open_stream() over the pooled httpx clients; transport-error mapping
keypool       choosing a usable key from a provider's pool; the providers' rate-limit headers fed back
retry         backoff, Retry-After and what is worth retrying (pure functions)
config_cache  the configuration snapshot (providers, keys, policies) and its loader
usage         the one usage writer thread: bounded queue, batched inserts, row-by-row fallback

Events a stream yields are in byok.providers.types (StreamStarted, StreamEvent, StreamDone,
StreamFailed); the shared state (rate windows, cooldowns, revoked-key marks) is byok.state.
"""
