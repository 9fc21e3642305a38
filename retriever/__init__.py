"""ragd's retriever: ingestion, hybrid BM25 + dense search over Chroma, fusion and reranking.

Public API (import from the modules; this package imports nothing, so importing it stays cheap):

* ``retriever.service.LocalRetriever(settings, epochs)``: the in-process ``Corpus`` + ``Retriever``
  (``warm_up()``, ``ready()``, ``aclose()``).
* ``retriever.client.HttpRetriever(base_url, timeout_s=30.0)``: the same protocols over HTTP.
* ``retriever.app.create_app(settings)``: the service behind ``ragd serve retriever``.
* ``retriever.settings.RetrieverSettings`` (env prefix ``RAGD_RETRIEVER_``).
* ``retriever.embedders.build_embedder`` (a runtime of ``embeddings.registry``);
  ``retriever.loaders.load_upload`` / ``load_path``; ``retriever.fusion`` (pure RRF and weighted fusion);
  ``retriever.text.analyze`` (BM25 terms, ko/en).
"""
