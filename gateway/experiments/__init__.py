"""A/B experiments: sticky assignment, per-variant counters, feedback and reports."""
