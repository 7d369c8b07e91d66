"""What a request may cost and what it did cost: caps, prices, budgets, token counts."""
