"""The model manifest: where weights live, their checksums, pulling and verifying them."""
