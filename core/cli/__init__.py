"""The command lines' halves: argument parsing and what a command prints. The runtime (core/ outside core.cli and
core.ui) never imports this package."""
