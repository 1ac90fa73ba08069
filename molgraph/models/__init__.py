"""Heads, tasks and the LightningModule."""

from molgraph.models.heads import MLPHead
from molgraph.models.module import PropertyModel
from molgraph.models.tasks import Task

__all__ = ["MLPHead", "PropertyModel", "Task"]
