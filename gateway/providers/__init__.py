"""Provider adapters: one module per API family behind the `Provider` protocol."""
