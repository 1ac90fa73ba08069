"""Heads, tasks, recipes, checkpoints and the LightningModule."""

from molgraph.models.heads import MLPHead
from molgraph.models.module import PropertyModel
from molgraph.models.recipe import ModuleSpec, Recipe
from molgraph.models.tasks import Task

__all__ = ["MLPHead", "ModuleSpec", "PropertyModel", "Recipe", "Task"]
