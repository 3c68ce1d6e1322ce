"""The live run: `Run` and its `RunOptions`, starting it, its metric buffer, the active-run
context, checkpoints, environment capture, system metrics.

`activate`, `push_active` and `pop_active` are public: integrations use them
to make a `Run` they hold the active one of the current thread or asyncio
task (see docs/python-api.md).
"""

from .context import activate, pop_active, push_active

__all__ = ["activate", "pop_active", "push_active"]
