"""`gitxp.tensorboard.SummaryWriter`: TensorBoard's writer API, recording into a gitxp run.

A public alias of `gitxp.integrations.tensorboard_writer`, where the code lives.
"""

from __future__ import annotations

from .integrations.tensorboard_writer import SummaryWriter

__all__ = ["SummaryWriter"]
