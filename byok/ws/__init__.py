"""The chat websocket at `/ws/chat/`: JSON frames, each an object with a `type`; every frame about a request
carries that request's client-chosen `id`.

Client -> server
    {"type": "auth", "token": "<DRF token>"}                  only without a session cookie / Authorization header
    {"type": "chat.request", "id": "r1", "messages": [{"role": "user", "content": "Hi"}],
     "provider": "openai", "model": "gpt-4o", "temperature": 0.2, "top_p": 1, "max_tokens": 200,
     "stop": ["\\n\\n"], "tools": [...], "tool_choice": "auto"}    (all but id and messages optional)
    {"type": "chat.cancel", "id": "r1"}

Server -> client
    chat.ready      {"user", "limits": {...}}                  once authenticated
    chat.delta      {"id", "text"} and/or "reasoning" / "refusal" (several deltas may arrive merged)
    chat.tool_call  {"id", "index", "tool_call_id", "name", "arguments"}  first fragment names the call;
                    later ones carry only `index` and more `arguments` text
    chat.done       {"id", "finish_reason", "usage", "provider", "model", "latency_ms", "ttft_ms",
                     "attempts", "failover_ms", "request_id"}                              terminal
    chat.error      {"id", "code", "message", "retryable", "partial"}                    terminal
    chat.notice     {"event", "message", ...}                  not about one request: a stop, a revoked key,
                                                               a cancel for an id that is not running

Every accepted request ends with exactly one terminal frame, `chat.done` or
`chat.error`. A cancelled request ends with `chat.error` code `cancelled`
(`partial` says whether tokens had been sent); one stopped by an admin with
`stopped`; one whose provider had a key revoked with `key_revoked`. A frame
the server rejects gets a `chat.error` with the id it carried (null when it
had none) and the socket stays open: `bad_frame` (not a JSON object, binary),
`frame_too_large` (over `MAX_FRAME_BYTES`), `unknown_type`, `bad_request`
(missing or invalid fields; a request refused so never started), `duplicate_id`
(an id still running: that earlier request goes on), `too_many_requests` (over
`MAX_IN_FLIGHT` running on this socket), `unauthenticated`. Frames above
daphne's own limit (1 MiB) are cut off by daphne, which closes the socket.

Authentication: a session cookie or an `Authorization: Token|Bearer` header
at the handshake (see `byok.ws.auth`), or an `auth` frame within
`AUTH_TIMEOUT_S`. Close code 4401 ends a socket whose credentials were wrong
or that did not authenticate in time, after a `chat.error` saying which.

Across processes (`byok.ws.broadcast`): each authenticated socket joins the
channel-layer groups `byok.user.<id>` and `byok.all`. `broadcast_stop()` (the
`ws_stop` management command) stops running requests; a key revoke (the
registry's `key_revoked` signal, after commit) stops running requests routed to
that key's provider. Both send a `chat.notice` first.

The modules:


frames     client frames -> ChatRequest, error and notice frames (pure)
render     stream events -> chat.delta / chat.tool_call / chat.done / chat.error frames (pure)
outbox     the bounded, coalescing send queue in front of one socket
auth       handshake credentials (session cookie, Authorization header), first-frame tokens
broadcast  stop / key-revoked / credentials-changed notices to sockets on every process
consumer   the Channels consumer wiring them together
"""
