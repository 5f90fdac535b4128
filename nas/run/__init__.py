"""Running a search, one idea per module:

- ``settings``: the run's settings, declared once; ``runconfig``: ``nas run key=value`` -> a run config;
- ``api``: ``nas.search`` and its ``SearchResult``: a run config -> checked objects -> a run;
- ``problem``, ``latencybound``, ``runlatency``, ``cheapest``: objectives and constraints, the
  baseline's latency bound, where latency comes from, bounds no member can meet;
- ``trial``: the values a run passes around; ``pruning``: stopping evaluations early;
- ``runner``: the run loop (``Run``), which holds its ``store`` and its ``checkpoint``;
- ``checkpoint``: ``state.json``, the commit point, and the resume protocol;
- ``store``: where a run keeps its trials and state (``RunStore``: ``RunFiles`` or ``RunMemory``);
- ``folder``: a run's folder (``RunDir``, ``run_folder``), its id, claiming and finding it, ``config.yaml``;
- ``files``: files a crash never leaves half-written, and the shared leaderboard file;
- ``results``: ``nas.leaderboard``, the leaderboard ranked.
"""
