"""Language detection, BM25 analyzers and sentence splitting on known sentences."""

from __future__ import annotations

from retriever.text import analyze, detect_language, split_sentences


def test_korean_keeps_content_morphemes_and_drops_particles_and_endings() -> None:
    terms = analyze("서울특별시는 대한민국의 수도이며, 인구는 약 940만 명이다.")
    assert {"서울", "대한민국", "수도", "인구", "940"} <= set(terms)
    assert not {"는", "의", "이", "며", "다", "은"} & set(terms)


def test_multi_word_proper_nouns_become_single_word_terms() -> None:
    terms = analyze("제럴드 포드 대통령은 더글러스 맥아더를 만났다.")  # Kiwi tags "제럴드 포드" as one NNP
    assert {"제럴드", "포드", "대통령", "더글러스", "맥아더"} <= set(terms)
    assert not [t for t in terms if t != t.strip() or " " in t]


def test_korean_verbs_reduce_to_stems() -> None:
    assert "먹" in analyze("동생이 사과를 먹었습니다")
    assert "먹" in analyze("사과를 먹는다")


def test_english_lowercases_drops_stopwords_and_stems() -> None:
    assert analyze("The Cats were Running to the stations") == ["cat", "run", "station"]


def test_mixed_text_stems_latin_words_and_analyzes_korean() -> None:
    terms = analyze("RAG 시스템은 retrieval-augmented generation을 사용합니다")
    assert {"rag", "시스템", "retriev", "generat", "사용"} <= set(terms)
    assert "을" not in terms


def test_query_and_document_forms_meet() -> None:
    assert set(analyze("한글은 누가 만들었나요?")) & set(analyze("세종대왕이 한글을 만들었다"))
    assert set(analyze("running")) == set(analyze("runs"))


def test_detect_language() -> None:
    assert detect_language("오늘 날씨가 좋네요") == "ko"
    assert detect_language("The weather is nice today") == "en"
    assert detect_language("이 문장에는 영어 단어 AI가 들어 있다") == "ko"
    assert detect_language("A long English sentence with one 한글 word") == "en"
    assert detect_language("1234 !!!") == "en"


def test_split_sentences_english_korean_and_paragraphs() -> None:
    text = "First one. Second one! 한국어 문장입니다. 두 번째 문장이에요?\n\nNew paragraph without end"
    assert split_sentences(text) == ["First one.", "Second one!", "한국어 문장입니다.", "두 번째 문장이에요?",
                                     "New paragraph without end"]
