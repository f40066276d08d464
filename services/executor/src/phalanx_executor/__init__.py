"""Executor: plans signals into per-shard batches and places orders under a shared budget."""
