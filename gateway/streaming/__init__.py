"""Server-sent events: decoding provider streams and relaying them to clients."""
