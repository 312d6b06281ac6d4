"""Use cases: one module per action. Logic never sees a raw Lambda event."""
