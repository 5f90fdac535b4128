"""Choosing the winner: repeated evaluations ranked by mean and std, and hand-designed baselines."""
