"""The chat websocket at `/ws/chat/` (protocol: see `byok.ws.consumer`).

frames     client frames -> ChatRequest, error and notice frames (pure)
render     stream events -> chat.delta / chat.tool_call / chat.done / chat.error frames (pure)
outbox     the bounded, coalescing send queue in front of one socket
auth       handshake credentials (session cookie, Authorization header), first-frame tokens
broadcast  stop / key-revoked / credentials-changed notices to sockets on every process
consumer   the Channels consumer wiring them together
"""
