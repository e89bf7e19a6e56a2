import dagster as dg

# One partition per distinct photo, keyed by readable stem + short content hash, in insertion order.
images_partitions = dg.DynamicPartitionsDefinition(name="images")
