"""The static leaderboard site (``python -m benchmarks publish``): :mod:`.collect` gathers and
checks the runs of results directories, :mod:`.site` builds the pages, :mod:`.render` holds the
Jinja2 environment; templates and the stylesheet are package data beside them."""
