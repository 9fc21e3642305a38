"""ragd's tooling tree: evaluation, training, benchmarks. Runtime code never imports it."""
