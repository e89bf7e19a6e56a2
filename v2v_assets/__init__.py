"""The Dagster layer of v2v: partitions, phase assets, checks, sensors, schedules and the CLI."""
