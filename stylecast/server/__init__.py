"""The server: REST (`/v1/...`), the WebSocket stream (`/v1/stream`), WebRTC and the web page,
all over the engine's public session API (`stylecast.engine.session`). Start it with
`stylecast serve`; docs/server.md and docs/protocol.md describe it."""
