"""Stateful fake vendor servers on 127.0.0.1 for the REST connector tests (no mocks of our code)."""
