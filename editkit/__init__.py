"""editkit: locate-and-edit knowledge editing as objective solver × edit-distribution strategy."""

import logging

from . import teaching  # noqa: F401  (registers the teaching corpus)
from .config import EditorConfig, StatsConfig, TargetConfig
from .distribution import STRATEGIES
from .edit import Edit
from .editor import Editor
from .models import load_model
from .objectives import OBJECTIVES
from .requests import EditRequest

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["OBJECTIVES", "STRATEGIES", "Edit", "EditRequest", "Editor", "EditorConfig", "StatsConfig", "TargetConfig", "load_model"]
