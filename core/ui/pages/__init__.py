"""Whole pages that are not task pages: home (Home), lesson (Lesson), gradient_lab (Gradient Lab), your_data
(Your data), plugins (Plugins).

The URL of every page is decided here, so the router and the browser test agree on it.
"""

# page -> url path ("" = root)
FIXED_PATHS = {"home": "", "lesson": "lesson", "gradient_lab": "gradient-lab", "your_data": "your-data",
               "plugins": "plugins"}
RESERVED = {"home", "lesson", "plugins", "gradient-lab", "your-data"}  # url paths a task cannot take


def task_url_path(name: str) -> str:
    """A task's page lives at /<name> (or /task-<name> in the unlikely case its name is a fixed page's)."""
    return name if name not in RESERVED else f"task-{name}"
