"""`nas ...` commands: argument parsing, rich tables and progress bars (the only place that prints).

The entry point is ``nas.cli.commands:main``.
"""
