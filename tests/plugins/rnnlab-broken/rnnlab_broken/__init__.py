"""A plugin that fails at import, on purpose."""

raise RuntimeError("rnnlab_broken fails at import on purpose")
