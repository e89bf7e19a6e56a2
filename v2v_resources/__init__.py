"""v2v engines: images, models and hardware. Nothing here knows about Dagster."""
