"""``ragd bench peers``: ragd side by side with what its users would pick instead (LiteLLM's proxy cache,
LlamaIndex's hybrid retrieval, GPTCache), each peer installed from PyPI into its own virtualenv under
``.peers/`` and run there; ragd runs in its own environment, in the same run on the same machine."""
