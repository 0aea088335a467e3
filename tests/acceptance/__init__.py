"""The outside acceptance run over HTTP (``python -m tests.acceptance.run``).

A black-box client: it knows only the HTTP contract (docs/API.md) and the demo
accounts, never the application's code.
"""
