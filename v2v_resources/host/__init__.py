"""`v2v host`: one long-lived model host per GPU.

It loads the phase I-III models once under one VramManager, warms them once, and serves the GPU phases of
every run on its machine over HTTP. Requests name a phase, a partition key and the shared home; images stay
on disk. SDXL attempts from concurrent requests share pipeline calls (`batcher`), while phase I, ESRGAN and
the CPU work of other requests run beside them on worker threads. No Dagster here: `client.HostClient` is
what the Dagster resource uses.
"""
