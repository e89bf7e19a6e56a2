import dagster as dg

# The whole chain for a range of images; checks run inline with their assets.
process_images = dg.define_asset_job(
    "process_images",
    selection=dg.AssetSelection.groups("v2v"),
    description="photo → clean_plate → illustration → palette_raster → vector_svg for a range of images",
)
