"""Speech-ready text: Markdown cleaning, clause splitting, repetition detection."""

from __future__ import annotations

import pytest

from voicegrok.text import ClauseSplitter, RepetitionGuard, speakable


@pytest.mark.parametrize(
    ("markdown", "spoken"),
    [
        ("| **Time** | Place | Cost |", "Time, Place, Cost."),
        ("|---|:---:|---:|", ""),
        ("## Day 1: Brooklyn", "Day 1: Brooklyn"),
        ("- Walk the **High Line** at dawn", "Walk the High Line at dawn"),
        ("1. Visit *Red Hook*", "Visit Red Hook"),
        ("See [the museum](https://example.org/x) today", "See the museum today"),
        ("More at https://example.org/a?b=c now.", "More at now."),
        ("> a quote with `code`", "a quote with code"),
        ("snake_case_name stays", "snake_case_name stays"),
        ("***", ""),
        ("```python", ""),
    ],
)
def test_speakable_reads_words_not_markdown_symbols(markdown: str, spoken: str) -> None:
    """Table pipes, emphasis, headings, list markers and URLs are not read out."""
    assert speakable(markdown) == spoken


def test_speakable_keeps_every_word_of_a_table() -> None:
    """A whole table becomes one sentence per row, the separator row vanishes."""
    table = "| Time | Place |\n|---|---|\n| 9 am | Red Hook |\n| noon | Arthur Avenue |"
    assert speakable(table) == "Time, Place. 9 am, Red Hook. noon, Arthur Avenue."


def split(text: str, chunk: int = 3, **kw: int) -> list[str]:
    """Feed ``text`` in small pieces, as an LLM streams it."""
    s = ClauseSplitter(**kw)
    out: list[str] = []
    for i in range(0, len(text), chunk):
        out += s.feed(text[i : i + chunk])
    return out + s.flush()


@pytest.mark.parametrize("chunk", [1, 3, 1000])
def test_the_first_clause_is_cut_early_at_a_comma(chunk: int) -> None:
    """The first piece ends at the first comma (one word is enough, see the README), however
    the text is streamed; later short sentences are not cut at theirs."""
    pieces = split("Sure thing, here is a plan for you. Day one starts early, then more.", chunk)
    assert pieces == ["Sure thing,", "here is a plan for you.", "Day one starts early, then more."]
    pieces = split("Of course I can, here is a plan for you. Day one, then more.", chunk)
    assert pieces == ["Of course I can,", "here is a plan for you.", "Day one, then more."]


def test_a_long_first_sentence_without_commas_is_cut_before_a_joining_word() -> None:
    """The first sound should not wait for a whole long sentence."""
    pieces = split("I'd be delighted to help you plan your two-day adventure. Day one.")
    assert pieces[:2] == ["I'd be delighted", "to help you plan your two-day adventure."]
    pieces = split("I'm happy to help you plan your two-day NYC adventure.")
    assert pieces == ["I'm happy", "to help you plan your two-day NYC adventure."]
    # no joining word: cut after first_max_words; later sentences are never cut this way
    pieces = split("One two three four five six seven eight nine ten eleven twelve thirteen.")
    assert pieces == ["One two three four five six seven eight", "nine ten eleven twelve thirteen."]
    later = "Then walk to the park and eat."
    assert split(f"Yes. {later}") == ["Yes.", later]


@pytest.mark.parametrize("chunk", [1, 4, 1000])
def test_a_first_sentence_full_of_numbers_is_cut_before_it_gets_long_to_say(chunk: int) -> None:
    """Numbers are long to say and written a digit at a time: the first sound should not
    wait for "(3,476 kilometers)" too (SmolLM2's answer, heard 1.2-1.6 s after the question)."""
    answer = "The moon is approximately 2,150 miles (3,476 kilometers) away from Earth."
    assert split(answer, chunk) == [
        "The moon is approximately 2,150 miles",
        "(3,476 kilometers) away from Earth.",
    ]
    assert split("It takes 3 to 4 hours 20 minutes 15 seconds here now.", chunk)[0] == (
        "It takes 3"
    )  # (a joining word still comes first)
    assert split("It is 12 34 56 78 degrees outside today.", chunk)[0] == "It is 12 34"  # 1+1+3+3


def test_a_first_word_with_a_comma_is_spoken_on_its_own() -> None:
    """ "Sure," is a clause: it is heard while the rest of the sentence is written."""
    assert split("Sure, here is a table with the itinerary:\n| a |") == [
        "Sure,",
        "here is a table with the itinerary:",
        "| a |",
    ]


async def test_the_clause_stage_cuts_a_long_first_sentence() -> None:
    """The stage builds its splitter with the right settings (it once passed max_words as
    the phrase length, so a long first sentence was never cut)."""
    from voicegrok.frames import LLMDone, LLMToken, SpokenClause
    from voicegrok.stages import ClauseStage
    from voicegrok.testing import run_stage

    text = "I'd be delighted to help you plan your two-day adventure. Day one."
    tokens = [LLMToken(turn_id=1, text=w + " ", index=i) for i, w in enumerate(text.split())]
    done = LLMDone(turn_id=1, text=text, n_tokens=len(tokens), first_token_s=0, last_token_s=0)
    out = await run_stage(ClauseStage(), [*tokens, done])
    clauses = [f.text for f in out if isinstance(f, SpokenClause)]
    assert clauses == ["I'd be delighted", "to help you plan your two-day adventure.", "Day one."]


def test_sentences_and_lines_end_pieces_but_abbreviations_do_not() -> None:
    """Mr. and St. and list numbers do not end a sentence; line breaks always do."""
    text = "Hi. Meet Mr. Smith on St. Marks Place. Then eat.\n1. Coffee\n2. Bagels"
    assert split(text) == [
        "Hi.",
        "Meet Mr. Smith on St. Marks Place.",
        "Then eat.",
        "1. Coffee",
        "2. Bagels",
    ]


def test_long_later_sentences_are_cut_at_a_clause_mark() -> None:
    """Past max_words, a later piece is cut at its next comma."""
    long = "One. " + "word " * 30 + "end, and the rest follows here."
    pieces = split(long, max_words=24)
    assert pieces[0] == "One."
    assert pieces[1].endswith("end,")
    assert pieces[2] == "and the rest follows here."


def test_nothing_is_lost_or_duplicated_by_splitting() -> None:
    """Joining the pieces gives back the text (up to white space)."""
    text = "Hi, I am here. | a | b |\n|---|---|\nDone! Really? Yes: fine, ok."
    assert " ".join(split(text, chunk=1)).split() == text.split()


def test_repetition_guard_fires_on_a_repeated_line_only() -> None:
    """The same long line twice means the model is looping; short repeats do not count."""
    g = RepetitionGuard()
    assert not g.feed("Morning: walk the High Line.\n")
    assert not g.feed("OK.\nOK.\n")
    assert not g.feed("Afternoon: Brooklyn Bridge Park.\n")
    assert g.feed("Morning: walk the High Line.\n")


@pytest.mark.parametrize(
    ("clause", "pause_ms"),
    [
        ("Here is a plan.", 220),
        ("Really?", 220),
        ('He said "go."', 220),
        ("Sure,", 120),
        ("Day 1:", 120),
        ("I'd be delighted", 30),
        ("", 30),
    ],
)
def test_the_pause_after_a_clause_follows_its_ending(clause: str, pause_ms: float) -> None:
    from voicegrok.stages.tts import pause_after

    assert pause_after(clause) == pause_ms
