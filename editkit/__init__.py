"""editkit: locate-and-edit knowledge editing as objective solver × edit-distribution strategy."""

import logging

from .config import EditorConfig, StatsConfig, TargetConfig
from .distribution import STRATEGIES
from .objectives import OBJECTIVES

logging.getLogger(__name__).addHandler(logging.NullHandler())

from .edit import Edit
from .editor import Editor
from .models import load_model
from .requests import EditRequest

__all__ = ["OBJECTIVES", "STRATEGIES", "Edit", "EditRequest", "Editor", "EditorConfig", "StatsConfig", "TargetConfig", "load_model"]
