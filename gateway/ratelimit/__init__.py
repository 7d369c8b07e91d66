"""Rate limiting: rules per scope, windows in memory or Redis, the headers clients read."""
