"""Child process of the durability tests: ingest the fixture corpus two documents per call into DATA_DIR,
printing ``acked <ids>`` after each acknowledged call.

With ``--die-before-commit N`` it SIGKILLs itself inside call N after the chunks are written and before the
document records are committed: the worst moment for a crash.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from pathlib import Path
from typing import Any

from retriever.service import LocalRetriever
from retriever.settings import RetrieverSettings
from retriever.store import ChromaStore
from services.contracts import CollectionConfig
from services.epochs import MemoryEpochStore
from tests.retriever.conftest import load_docs


async def main(data_dir: Path, die_before_commit: int | None) -> None:
    retriever = LocalRetriever(RetrieverSettings(data_dir=data_dir, redis_url=None), MemoryEpochStore())
    await retriever.warm_up()
    await retriever.create_collection("acme", "kb", CollectionConfig())
    docs = load_docs()
    commit = ChromaStore.commit_docs
    for call, start in enumerate(range(0, len(docs), 2), 1):
        if call == die_before_commit:
            def die(*_: Any) -> None:
                os.kill(os.getpid(), signal.SIGKILL)

            ChromaStore.commit_docs = die  # type: ignore[method-assign]
        report = await retriever.add_documents("acme", "kb", docs[start:start + 2])
        ChromaStore.commit_docs = commit  # type: ignore[method-assign]
        print("acked", *report.added, flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--die-before-commit", type=int, default=None)
    args = parser.parse_args()
    asyncio.run(main(args.data_dir, args.die_before_commit))
