"""What a run leaves for a person: the report, the plots, the summary table."""
