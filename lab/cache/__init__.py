"""Evaluation of the answer cache against retrieval: pairs about a corpus, the evidence check, and
the leave-kind-out choice of the threshold and the guards."""
