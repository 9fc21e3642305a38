"""ragd's tooling: evaluation, training, benchmarks and the local supervisor. It imports the runtime
packages; they never import it, and the images do not ship it."""
