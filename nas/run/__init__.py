"""Running a search: the run's config and folder, the problem, trials, the runner, the store, the Python API."""
