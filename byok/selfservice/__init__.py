"""Self-service for ordinary users (issue 14 item 5): their own gateway keys and their own usage.

`keys` holds the rules a user's own key must keep (a per-user cap, only their teams' models),
`usage` the figures of their own requests (the My usage page and `GET /api/me/usage`). Both
read and change only the signed-in user's rows: nothing here takes another user's id.
"""
