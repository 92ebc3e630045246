"""Edit distance, CER/WER and character alignment of the text metrics against an independent implementation
(jiwer, which computes Levenshtein alignments with RapidFuzz)."""

from __future__ import annotations

import numpy as np
import pytest

from qa.metrics.text.compare import compare_readings, overlaps, reading_order, text_of
from qa.metrics.text.ocr import Word
from qa.metrics.text.strings import edit_distance, fold, matched_characters

jiwer = pytest.importorskip("jiwer", reason="jiwer (a dev dependency) is the independent CER/WER implementation")

ALPHABET = list("abcdeEXIT01l ")


def _random_text(rng: np.random.Generator, n: int) -> str:
    return " ".join("".join(rng.choice(ALPHABET[:-1], size=rng.integers(1, 7))) for _ in range(n))


def test_edit_distance_equals_jiwer_on_characters_and_words() -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        a, b = _random_text(rng, int(rng.integers(1, 12))), _random_text(rng, int(rng.integers(0, 12)))
        ours = edit_distance(a, b) / len(a)
        assert ours == pytest.approx(jiwer.cer(a, b), abs=1e-12), (a, b)
        if b:
            assert edit_distance(a.split(), b.split()) / len(a.split()) == pytest.approx(jiwer.wer(a, b), abs=1e-12)
    assert edit_distance("", "abc") == 3 and edit_distance("abc", "") == 3 and edit_distance("", "") == 0
    assert edit_distance("kitten", "sitting") == 3


def _words(text: str, conf: float = 95.0) -> list[Word]:
    """One Word per token, laid out left to right on rows (one row per line of ``text``), 20 px tall."""
    out = []
    for row, line in enumerate(text.splitlines()):
        x = 0
        for token in line.split():
            out.append(Word(token, conf, (x, 30 * row, x + 12 * len(token), 30 * row + 20), row))
            x += 12 * len(token) + 10
    return out


def test_cer_and_wer_of_readings_equal_jiwer_on_the_folded_text() -> None:
    ref, out = "EXIT NOW\nPlatform 10 north", "EX1T NOW\nPlatfrom 10"
    c = compare_readings(_words(ref), _words(out))
    ref_f, out_f = fold(" ".join(ref.split())), fold(" ".join(out.split()))
    assert c.cer == pytest.approx(jiwer.cer(ref_f, out_f)) and c.cer > 0
    assert c.wer == pytest.approx(jiwer.wer(ref_f, out_f)) and c.wer > 0
    assert "1" not in fold("EX1T") and fold("EX1T") == fold("exit")  # look-alike glyphs are one letter
    same = compare_readings(_words(ref), _words(ref))
    assert (same.cer, same.wer, same.invented) == (0.0, 0.0, 0.0)


def test_error_rates_are_clipped_and_defined_on_empty_readings() -> None:
    assert compare_readings([], []).cer == 0.0
    assert compare_readings([], _words("INVENTED")).cer == 1.0  # no reference text, text in the output
    assert compare_readings(_words("A B"), _words("C D E F G H")).wer == 1.0  # 6 edits over 2 words, clipped


def test_low_confidence_and_symbol_only_words_are_not_read() -> None:
    c = compare_readings(_words("EXIT"), _words("EXIT", conf=95) + [Word("KX", 60.0, (200, 0, 230, 20), 0),
                                                                 Word("\\\\", 99.0, (250, 0, 260, 20), 0)])
    assert c.output_text == "EXIT" and c.invented == 0.0


def test_matched_characters_marks_exactly_the_replaced_letters() -> None:
    assert matched_characters("EXIT", "EXIT") == [True] * 4
    assert matched_characters("EXJT", "EXIT") == [True, True, False, True]
    assert matched_characters("EXIT", "PLEASE EXIT NOW") == [True] * 4  # a contiguous part of the support
    assert matched_characters("exit", "") == [False] * 4
    assert matched_characters("Ex1t", "EXIT") == [True] * 4  # folded: case and look-alikes


def test_replaced_word_of_the_same_length_is_invented_and_only_it() -> None:
    ref, out = _words("NORTH GATE\nPlatform 7"), _words("SOUTH GATE\nPlatform 7")
    c = compare_readings(ref, out)
    invented = [d for d in c.words if d.invented]
    assert [(d.output, d.reference) for d in invented] == [("SOUTH", "NORTH")]
    assert invented[0].invented == 2  # S and U; O, T and H stand where the reference has them
    assert c.invented == pytest.approx(2 / 18)  # of SOUTH GATE Platform 7


def test_reading_order_groups_rows_by_vertical_overlap() -> None:
    words = [Word("two", 95, (60, 2, 90, 22), 0), Word("one", 95, (0, 0, 40, 20), 3),
             Word("three", 95, (0, 40, 60, 60), 1)]
    assert [[w.text for w in row] for row in reading_order(words)] == [["one", "two"], ["three"]]
    assert text_of(words) == "one two\nthree"


def _overlap_of_one_pair(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """The definition, pair by pair: intersection area over the smaller box's area, 0 when disjoint/degenerate."""
    ix, iy = min(a[2], b[2]) - max(a[0], b[0]), min(a[3], b[3]) - max(a[1], b[1])
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return ix * iy / smaller if ix > 0 and iy > 0 and smaller > 0 else 0.0


def test_overlaps_of_all_pairs_equal_the_definition_pair_by_pair() -> None:
    rng = np.random.default_rng(1)
    corners = rng.integers(0, 40, size=(2, 60, 2))
    sizes = rng.integers(-2, 25, size=(2, 60, 2))  # some empty and inverted boxes
    a, b = ([tuple(int(v) for v in (*c, *(c + s))) for c, s in zip(corners[k], sizes[k], strict=True)]
            for k in range(2))
    got = overlaps(a, b)
    assert got.shape == (60, 60)
    assert all(got[i, j] == _overlap_of_one_pair(a[i], b[j]) for i in range(60) for j in range(60))
    assert 0 < (got > 0).mean() < 1 and (got == 1).any()
    assert overlaps([], b).shape == (0, 60) and overlaps(a, []).shape == (60, 0)
