"""letzflow settings: one typed object read once from the environment and ``.env``."""

from config.settings import Settings, get_settings

__all__ = ["Settings", "get_settings"]
