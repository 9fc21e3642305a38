"""Embedding runtimes shared by the pieces: the packaged e5 and MiniLM weights under ONNX Runtime and
torch, the graph builder and weight readers behind them, and the :class:`Embedder` interface."""
