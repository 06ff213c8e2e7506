"""Text for the ear: Markdown cleaned for speech, and streamed tokens cut into clauses.

The displayed answer keeps its Markdown (tables must look like tables); what is read out
must not contain table pipes, ``**``, ``#``, list markers or URLs. Both functions here are
pure and work on partial text, so they can run on a stream of LLM tokens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import jellyfish

__all__ = [
    "ClauseSplitter",
    "RepetitionGuard",
    "agreed_words",
    "goes_on",
    "is_aside",
    "looks_complete",
    "speakable",
    "trails_off",
    "words",
]

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_HTML_TAG = re.compile(r"</?[a-zA-Z][^>]*>")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
_HRULE = re.compile(r"^\s*([-*_])\s*(\1\s*){2,}$")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s*")
_QUOTE = re.compile(r"^\s*>+\s?")
_LIST = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+")
_EMPHASIS = re.compile(r"(\*{1,3}|~~)(?=\S)(.+?)(?<=\S)\1")
_UNDERSCORE_EMPHASIS = re.compile(r"(?<!\w)(_{1,3})(?=\S)(.+?)(?<=\S)\1(?!\w)")
_LEFTOVER = re.compile(r"[*#|`~^<>\[\]{}\\]|(?<!\w)_|_(?!\w)")
_SPACES = re.compile(r"[ \t]+")


def speakable(text: str) -> str:
    """Return ``text`` as it should be read out: Markdown, tables and URLs turned into words.

    >>> speakable("| **Time** | Place |")
    'Time, Place.'
    """
    out_lines = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("```") or _TABLE_RULE.match(line) or _HRULE.match(line):
            continue
        line = _MD_LINK.sub(r"\1", line)
        line = _URL.sub("", line)
        line = _HTML_TAG.sub("", line)
        is_row = line.startswith("|") or line.count("|") >= 2
        line = _HEADING.sub("", line)
        line = _QUOTE.sub("", line)
        line = _LIST.sub("", line)
        line = line.replace("`", "")
        line = _EMPHASIS.sub(r"\2", line)
        line = _UNDERSCORE_EMPHASIS.sub(r"\2", line)
        if is_row:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            cells = [c for c in cells if c]
            line = ", ".join(cells)
            if line and line[-1] not in ".!?":
                line += "."
        line = _LEFTOVER.sub(" ", line)
        line = _SPACES.sub(" ", line).strip()
        if line and any(ch.isalnum() for ch in line):
            out_lines.append(line)
    return " ".join(out_lines)


# A sentence ends at . ! ? (and closing quotes or brackets) followed by white space.
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s)")
# A clause ends at , ; : or a dash followed by white space.
_CLAUSE_END = re.compile(r"(?:[,;:]|\s[—–-])[\"'”’)\]]*(?=\s)")
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr st sr jr vs etc e.g i.e a.m p.m u.s u.k no approx ave blvd mt ft".split()
)


_WORD_SPAN = re.compile(r"\S+")
_JOINING_WORDS = frozenset(
    "to and or but with for in on at from that which who because so while when where "
    "about into during after before".split()
)


NUMBER_WORDS = 3
"""Words a number counts for in a first clause's length: the voice reads "2,150" as "two
thousand one hundred fifty", and the LLM writes it a digit at a time."""
_DIGIT = re.compile(r"\d")


def _words(text: str) -> int:
    return len(text.split())


def _is_abbreviation(buf: str, dot: int) -> bool:
    """Whether the ``.`` at ``buf[dot]`` ends an abbreviation, an initial or a list number."""
    if buf[dot] != ".":
        return False
    start = dot
    while start > 0 and not buf[start - 1].isspace():
        start -= 1
    word = buf[start:dot].lower().lstrip("(\"'*_")
    if word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
        return True
    line_start = buf.rfind("\n", 0, dot) + 1
    return buf[line_start:dot].strip().isdigit()  # "1. Visit ..." is a list marker


@dataclass
class ClauseSplitter:
    """Cut a stream of text into speakable pieces as early as the text allows.

    - a line break always ends a piece (Markdown lines, table rows);
    - a sentence end (``. ! ?`` then white space) ends a piece, except after common
      abbreviations, initials and list numbers;
    - the first piece of an answer is also cut at a clause mark (``, ; :`` or a dash)
      once it has ``first_min_words`` words ("Sure,"), so the first sound comes early;
    - a first piece with no clause mark is cut before a joining word ("to", "and", "with",
      ...) once it has ``first_phrase_words`` words, or after ``first_max_words`` words;
    - any later piece longer than ``max_words`` is cut at its next clause mark.
    """

    first_min_words: int = 1
    first_phrase_words: int = 2
    first_max_words: int = 8
    max_words: int = 24
    _buf: str = field(default="", init=False)
    _emitted: int = field(default=0, init=False)

    def feed(self, text: str) -> list[str]:
        """Add streamed text; return the pieces it completed (possibly none)."""
        self._buf += text
        out = []
        while (cut := self._next_cut()) is not None:
            piece, self._buf = self._buf[:cut], self._buf[cut:]
            if piece.strip():
                out.append(piece.strip())
                self._emitted += 1
        return out

    def flush(self) -> list[str]:
        """End of the stream: return what is left as a last piece."""
        piece, self._buf = self._buf.strip(), ""
        if piece:
            self._emitted += 1
            return [piece]
        return []

    def _next_cut(self) -> int | None:
        buf = self._buf
        cuts = []
        newline = buf.find("\n")
        if newline >= 0:
            cuts.append(newline + 1)
        for m in _SENTENCE_END.finditer(buf):
            if not _is_abbreviation(buf, m.end() - 1 - _closing_len(m.group())):
                cuts.append(m.end())
                break
        limit = self.first_min_words if self._emitted == 0 else self.max_words
        if _words(buf) >= limit:
            for m in _CLAUSE_END.finditer(buf):
                if _words(buf[: m.end()]) >= limit:
                    cuts.append(m.end())
                    break
        if self._emitted == 0 and not cuts:
            cut = self._first_phrase_cut(buf)
            if cut is not None:
                cuts.append(cut)
        return min(cuts) if cuts else None

    def _first_phrase_cut(self, buf: str) -> int | None:
        """Where to cut a long first sentence that has no clause mark yet (or None): before
        a joining word or an opening bracket, or once it has ``first_max_words`` spoken
        words, a number counting as :data:`NUMBER_WORDS` ("2,150" is said in five)."""
        words = list(_WORD_SPAN.finditer(buf))
        complete = words[:-1] if not buf[-1:].isspace() else words  # the last may go on
        if "\n" in buf or "|" in buf or len(words) < self.first_phrase_words + 1:
            return None
        mark = _CLAUSE_END.search(buf)
        start = self.first_phrase_words
        if mark is not None:  # too early to cut at; count the words after it
            start += sum(1 for m in complete if m.end() <= mark.end())
        for i, m in enumerate(words[start:], start):
            word = m.group()
            if word.startswith("(") or (i < len(complete) and word.lower() in _JOINING_WORDS):
                return words[i - 1].end()
        spoken = 0
        for m in complete:
            spoken += NUMBER_WORDS if _DIGIT.search(m.group()) else 1
            if spoken >= self.first_max_words:
                return m.end()
        return None


def _closing_len(mark: str) -> int:
    """Number of closing quotes or brackets after the punctuation in ``mark``."""
    return len(mark) - len(mark.rstrip("\"'”’)]"))


_UNIT_END = re.compile(r"\n|[.!?](?=\s)")
_NORMALIZE = re.compile(r"[^a-z0-9]+")


@dataclass
class RepetitionGuard:
    """Notices when an answer starts repeating itself (small models loop).

    ``feed`` returns True once a completed line or sentence of at least ``min_chars``
    letters and digits is the same as an earlier one of the same answer: the answer
    should stop there, since reading the same line out again helps nobody.
    """

    min_chars: int = 16
    _buf: str = field(default="", init=False)
    _seen: set[str] = field(default_factory=set, init=False)

    def feed(self, text: str) -> bool:
        self._buf += text
        repeated = False
        while (m := _UNIT_END.search(self._buf)) is not None:
            unit, self._buf = self._buf[: m.end()], self._buf[m.end() :]
            key = _NORMALIZE.sub("", unit.lower())
            if len(key) < self.min_chars:
                continue
            if key in self._seen:
                repeated = True
            self._seen.add(key)
        return repeated


# Words a sentence does not end on: a transcript ending with one is a thought cut short,
# whatever punctuation whisper put after it.
_OPEN_ENDINGS = frozenset(
    """a an the and or but nor so because if than to of for from with into onto about my
    your our their um uh er plus""".split()
)
_OPEN_UNPUNCTUATED = frozenset(
    """is are was were am be been will would can could should shall may might must do does
    did has have had in on at by as""".split()
)
"""Words a sentence seldom ends on: when whisper has not ended the words with ``.``, ``?``
or ``!`` either, they go on ("My favourite city is | probably Lisbon", cut off at the
pause in the turn-taking set); "Do you know where it is?" keeps its ``?``."""
_WORD = re.compile(r"[a-z0-9']+")


def words(text: str) -> list[str]:
    """The words of ``text``, lower-case, without punctuation.

    >>> words("Set a timer, for 6 seconds.")
    ['set', 'a', 'timer', 'for', '6', 'seconds']
    """
    return _WORD.findall(text.lower())


def looks_complete(transcript: str) -> bool:
    """Whether a (partial) transcript reads like a finished sentence: it ends with ``.``,
    ``?`` or ``!`` (not ``...``) and its last word is not one a sentence goes on from."""
    text = transcript.strip()
    if not text or text[-1] not in ".?!" or text.endswith(("...", "…")):
        return False
    found = words(text)
    return bool(found) and found[-1] not in _OPEN_ENDINGS


def trails_off(transcript: str) -> bool:
    """Whisper marks words cut off or trailing away ("And now...", "for a gl-")."""
    return transcript.rstrip().endswith(("...", "…", "-"))


def goes_on(transcript: str) -> bool:
    """Whether the words say more is coming, whatever their punctuation: nothing yet, a
    trailing "..." or cut-off "-", or a last word a sentence goes on from ("So.", "And
    then the.", "Um"); or, with no final punctuation, one it seldom ends on ("My favourite
    city is")."""
    text = transcript.strip()
    if trails_off(text):
        return True
    found = words(text)
    if not found or found[-1] in _OPEN_ENDINGS:
        return True
    return text[-1] not in ".?!" and found[-1] in _OPEN_UNPUNCTUATED


_ASIDES = frozenset(
    """mm mmm hmm hm mhm mmhmm uh huh um ah oh okay ok yeah yes yep right sure alright
    cool nice wow great i see got it gotcha thanks thank you""".split()
)

_MEANT = frozenset("stop wait no nope hold pause quiet enough hey cancel shh shush shut".split())
"""Words that stop an answer, alone or when the answer has a word that sounds like them."""

_NUMBER = {
    w: str(i)
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve".split()
    )
}
"""Numbers as whisper may write them either way ("two", "2")."""
_SPOKEN = {digit: word for word, digit in _NUMBER.items()}


SHORT_SPEECH_MS = 700
"""Speech over an answer shorter than this is a sound of listening ("mm-hmm" lasts 0.4-0.7
s) unless its words ask for something: whisper often makes a filler said over an echo
into words ("I'm Adam.", "And then then...")."""


def is_aside(heard: str, answer: str, voiced_ms: float | None = None) -> bool:
    """Whether words heard over an answer are not meant to stop it: nothing (a cough, a
    noise), one word that asks for nothing (a sound made out as "t" or "street", its own
    echo), a few words of listening ("mm-hmm", "okay", "yeah, right"), words that ask for
    nothing said in less than :data:`SHORT_SPEECH_MS` (``voiced_ms``: a filler made out
    wrong, as "I'm Adam." or "And we have them."; a question of four words or more is too
    long for that time), or only words of the answer itself or words that sound like
    them (its own voice heard back from the speaker). "Stop", "wait", "no" and the like,
    and a question, are meant."""
    heard_words = [_NUMBER.get(w, w) for w in words(heard)]
    if not heard_words:
        return True
    short = voiced_ms is not None and voiced_ms < SHORT_SPEECH_MS
    # (a short question has up to three words, "What?", "Is it far?"; four in that time
    # would be said at 6 words a second: made of a noise, as "Have you ever been?" was of
    # a "Mm-hmm." over the echo)
    question = heard.rstrip().endswith("?") and not (short and len(heard_words) > 3)
    asks = any(w in _MEANT for w in heard_words) or question
    if len(heard_words) == 1 and not asks:
        return True  # (one word stops an answer only if it asks to, as voice agents do)
    if len(heard_words) <= 3 and all(w in _ASIDES for w in heard_words):
        return True
    if short and not asks:
        return True  # (in that time, more than 2 or 3 words were made of a noise)
    if len(heard_words) > 6:
        return False
    said = {_NUMBER.get(w, w) for w in words(answer)}
    sounds = {_sound(w) for w in said}
    return all(w in said or (w not in _MEANT and _sound(w) in sounds) for w in heard_words)


def _sound(word: str) -> str:
    """How a word sounds, roughly (its Metaphone key), so that the answer's own words heard
    back match whatever whisper made of them: "4" heard as "for", "write" as "right"."""
    return str(jellyfish.metaphone(_SPOKEN.get(word, word)))


def agreed_words(older: str, newer: str, *, unsure: int = 1, loose: bool = False) -> str:
    """The words two successive partial transcripts of one utterance agree on, from the
    start ("local agreement"): what a later transcript will almost surely begin with too.

    The newer transcript's last ``unsure`` words are left out (its audio may stop inside
    a word), and so is a word whisper marks as cut off ("itiner-", "and..."). Words forced
    on a transcription need 2: whisper may hear a word cut short as two ("Atlanta" came
    out as "a plan", then "a planet"; the agreed "a", forced, made the final "a plan to").

    ``loose``: words that differ only in punctuation or case agree, in the newer
    transcript's spelling ("And now..." then "And now, can you do this?": whisper often
    changes its commas as it hears more). Good enough for the words the LLM evaluates
    ahead, whose cache is only cut back where the final transcript differs; not for words
    forced on a transcription.

    >>> agreed_words("Can you put this eye t", "Can you put this itinerary in a")
    'Can you put this'
    """
    agreed = []
    heard = newer.split()
    for a, b in zip(older.split(), heard[: max(0, len(heard) - unsure)], strict=False):
        same = words(a) == words(b) if loose else a == b
        if not same or b.endswith(("-", "...", "…")):
            break
        agreed.append(b)
    return " ".join(agreed)
