"""LLM stage: a final user text in, the streamed answer out; owns the conversation history.

While the person speaks, the words their partial transcripts agree on are put in the KV
cache ahead of time (:meth:`LLMStage._prefill`): when the final transcript comes, only its
last words and the chat template's closing tokens are left to evaluate before the first
token.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import ClassVar

from ..conversation import Conversation, Message
from ..engines import ChatModel
from ..errors import UsageError
from ..frames import Frame, LLMDone, LLMToken, ToolCallRequested, ToolUsed, UserText
from ..text import RepetitionGuard, agreed_words
from ..threads import EngineThread
from ..tools import Outcome, Toolbox, ToolCall
from ..tools.base import arguments_json, new_call_id
from ..tools.calls import ToolOffer, classify, offer, parse_call

MAX_CALLS = 3
"""Tool calls the model may make for one answer."""
FILLER_AFTER_S = 0.4
"""A tool that has not answered by then gets a filler said first (:data:`FILLER`)."""
FILLER = "One moment. "


class LLMStage:
    accepts: ClassVar[tuple[type[Frame], ...]] = (UserText,)
    inline: ClassVar[bool] = False
    passes_while_busy: ClassVar[tuple[type[Frame], ...]] = ()

    def __init__(
        self,
        engine: ChatModel,
        conversation: Conversation | None = None,
        *,
        max_tokens: int = 400,
        temperature: float = 0.3,
        thread: EngineThread | None = None,
        tools: Toolbox | None = None,
        released: Callable[[int], Awaitable[bool]] | None = None,
    ) -> None:
        """``released``: waits until a turn is let out (True) or withdrawn (False): a tool
        that acts (:attr:`Tool.acts`) is called only then (None: at once)."""
        self._engine = engine
        self._released = released
        self.tools = tools
        """Called for a request that plainly asks for one (see :meth:`Toolbox.route`)."""
        self.conversation = conversation if conversation is not None else Conversation()
        self._max_tokens = max_tokens
        self._temperature = temperature
        self._thread = thread or EngineThread("llm")
        self._budget = engine.n_ctx - max_tokens
        self._heard: tuple[int, str] = (0, "")
        """The latest partial transcript (turn id, text)."""
        self._prefilled = ""
        """The user words last put in the KV cache ahead of time."""
        self._answered = 0
        """The newest turn whose final text has come."""
        self._answer_waits = threading.Event()
        """Set from a turn's final text until its answer starts on the LLM thread: a
        warm-up running there gives up between two chunks (what it evaluated stays in the
        cache). On the rig, a partial transcript's prefill begun just before the pause
        held the answer back 46-74 ms in 3 turns of 55."""
        self.turn_options: dict[int, tuple[str | None, str]] = {}
        """Turn id -> instructions and tool choice set before its words came (see
        :meth:`Assistant.set_turn_options`)."""

    def _count(self, conversation: Conversation) -> tuple[list[Message], int]:
        """The trimmed prompt of ``conversation`` and its length in tokens (LLM thread)."""
        messages = conversation.messages(self._engine.count_tokens, self._budget)
        return messages, self._engine.count_tokens(messages)

    async def _prompt(
        self, text: str, turn_id: int, instructions: str | None = None
    ) -> list[Message]:
        """Add the question (if any) to the history (here, on the event loop, which owns
        it) and return the trimmed prompt, with ``instructions`` as its system prompt if
        given, or raise UsageError if the new message alone does not fit. The tokens are
        counted on the LLM thread, on a copy."""
        if text:
            self.conversation.add_user(text, turn_id)
        snapshot = self.conversation.snapshot()
        if instructions is not None:
            snapshot.system_prompt = instructions
        messages, used = await self._thread.call(self._count, snapshot)
        if used > self._budget:
            self.conversation.forget_turn(turn_id)
            raise UsageError(
                f"the message is too long for the model: {used} tokens, at most "
                f"{self._budget} fit; say it in shorter parts"
            )
        return messages

    def _prefill(self, partial: UserText) -> None:
        """Evaluate the history and the words the person has surely said so far (two
        partial transcripts agree on them) on the LLM thread, in the background. The prompt
        of the final transcript then shares that prefix with the KV cache: the first token
        comes after its last few words instead of the whole question (batched evaluation
        costs a few milliseconds a token on a CPU).

        Words that begin the ones already evaluated are not evaluated again: the cache
        would be cut back to them, losing words after them that may still be right
        (partials that change a word agree on fewer words than the two before). The same
        holds for the history when a turn is withdrawn (see ``Assistant.edit_history``)."""
        older_turn, older = self._heard
        self._heard = (partial.turn_id, partial.text)
        if older_turn != partial.turn_id:
            self._prefilled = ""
            return
        words = agreed_words(older, partial.text, loose=True)
        if len(words.split()) < 2 or _begins(self._prefilled, words):
            return  # (in the cache already)
        self._prefilled = words
        ahead = self.conversation.snapshot()
        ahead.add_user(words)
        turn_id = partial.turn_id
        # skipped if the final transcript comes first: it would only delay that answer
        self._warm_up_later(ahead, unless=lambda: self._answered >= turn_id, open_end=True)

    def history_edited(self) -> None:
        """The history was changed from outside (an interrupted answer narrowed to what was
        heard; not a withdrawn turn forgotten, whose history the cache holds already, see
        ``Assistant.edit_history``): put it in the KV cache again in the background,
        while the person speaks, so that their next question evaluates only its own words
        (an answer heard for 10 s is 40 tokens or so, about 160 ms on 2 cores). Skipped if
        a question has been answered by then: it would only delay that answer."""
        answered = self._answered
        self._warm_up_later(
            self.conversation.snapshot(), unless=lambda: self._answered > answered, background=True
        )

    def _warm_up_later(
        self,
        conversation: Conversation,
        *,
        unless: Callable[[], bool] = lambda: False,
        background: bool = False,
        open_end: bool = False,
    ) -> None:
        """Evaluate ``conversation``'s trimmed prompt into the KV cache on the LLM thread,
        after the work queued there, unless ``unless()`` is true by then. ``background``
        and ``open_end``: see :meth:`ChatModel.warm_up`."""

        def warm_up() -> None:
            if not unless():
                messages = conversation.messages(self._engine.count_tokens, self._budget)
                self._engine.warm_up(
                    messages, background=background, stop=self._answer_waits, open_end=open_end
                )

        self._thread.submit(warm_up)

    def _offer(self, choice: str) -> ToolOffer | None:
        """The tools the model may call for an answer: those of MCP servers and of the
        client (the built-in ones answer plain requests themselves, see ``route``)."""
        if self.tools is None or choice == "none":
            return None
        return offer([t for t in self.tools if t.source != "builtin"], choice)

    def _generate(
        self, messages: list[Message], tools: ToolOffer | None
    ) -> Callable[[], Iterator[str]]:
        extra = {"tools": tools} if tools is not None else {}

        def answer() -> Iterator[str]:
            self._answer_waits.clear()  # (on the LLM thread: no warm-up runs now)
            return self._engine.stream_chat(
                messages, max_tokens=self._max_tokens, temperature=self._temperature, **extra
            )

        return answer

    async def _let_out(self, turn_id: int, name: str) -> bool:
        """Whether the tool ``name`` may be called for the turn: at once unless it acts,
        else once the turn is let out (False: it was withdrawn)."""
        tool = self.tools.get(name) if self.tools is not None else None
        if tool is None or not tool.acts or self._released is None:
            return True
        return await self._released(turn_id)

    async def _routed(self, turn_id: int, text: str, call: ToolCall) -> AsyncIterator[Frame]:
        """A plain request for a built-in tool: the tool answers it, not the model."""
        assert self.tools is not None
        if not await self._let_out(turn_id, call.name):
            return  # withdrawn: the person went on, and nothing was done
        outcome = await self.tools.call(call)
        arguments = arguments_json(call.arguments)
        yield _used(turn_id, call, arguments, outcome, "router")
        self.conversation.add_user(text, turn_id)
        self.conversation.tool_used(turn_id, call.name, arguments, outcome.output, for_model=False)
        self.conversation.add_assistant(outcome.say, turn_id)
        async for out in _say(turn_id, outcome.say):
            yield out

    async def _call(self, turn_id: int, text: str) -> AsyncIterator[str | Frame]:
        """Carry out the tool call the model wrote (``text``), or hand it to the client
        whose function it is: a ToolUsed or ToolCallRequested frame, after a filler to
        say (a str) when the tool is slow to answer."""
        assert self.tools is not None
        call = parse_call(text)
        tool = self.tools.get(call.name) if call is not None else None
        if call is None or tool is None:
            raise UsageError("the model's tool call could not be read; ask again")
        arguments = arguments_json(call.arguments)
        if tool.source == "client":
            call_id = new_call_id()
            self.conversation.tool_called(turn_id, call.name, arguments)
            yield ToolCallRequested(
                turn_id=turn_id, name=call.name, arguments=arguments, call_id=call_id
            )
            return
        if not await self._let_out(turn_id, call.name):
            raise UsageError("the request was withdrawn before its tool was called")
        running = asyncio.ensure_future(self.tools.call(call))
        try:
            done, _ = await asyncio.wait({running}, timeout=FILLER_AFTER_S)
            if not done:
                yield FILLER  # the person hears that something is happening
            outcome = await running
        finally:
            running.cancel()  # the turn was cancelled meanwhile
        self.conversation.tool_used(turn_id, call.name, arguments, outcome.output, for_model=True)
        yield _used(turn_id, call, arguments, outcome, "llm")

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        assert isinstance(frame, UserText)
        yield frame
        if not frame.final:
            self._prefill(frame)
            return
        self._answered = max(self._answered, frame.turn_id)
        instructions, choice = frame.instructions, frame.tool_choice
        if frame.turn_id in self.turn_options:
            given, choice = self.turn_options.pop(frame.turn_id)
            instructions = given if given is not None else instructions
        self.turn_options = {t: o for t, o in self.turn_options.items() if t > frame.turn_id}
        text = frame.text.strip()
        if not text and frame.source != "conversation":
            return
        call = self.tools.route(text) if self.tools is not None and text else None
        if call is not None:
            async for out in self._routed(frame.turn_id, text, call):
                yield out
            return
        self._answer_waits.set()
        try:
            messages = await self._prompt(text, frame.turn_id, instructions)
        except BaseException:
            self._answer_waits.clear()
            raise
        offer = self._offer(choice)
        pieces: list[str] = []
        first_s = last_s = 0.0
        completed = False
        looping = False
        guard = RepetitionGuard()
        calls = 0
        called = False
        try:
            while True:
                answer = _Answer(offer is not None)
                stream = self._thread.stream(self._generate(messages, offer))
                async for piece in _ended(stream):
                    for spoken in answer.feed(piece):
                        token = LLMToken(turn_id=frame.turn_id, text=spoken, index=len(pieces))
                        if not pieces:
                            first_s = token.at_s
                        last_s = token.at_s
                        pieces.append(spoken)
                        yield token
                        if guard.feed(spoken):
                            looping = True  # the model repeats itself: end the answer here
                    if looping:
                        break
                if answer.call is None or looping:
                    break
                called = True
                result: Frame | None = None
                async for item in self._call(frame.turn_id, answer.call):
                    if isinstance(item, str):  # a filler while a slow tool works
                        token = LLMToken(turn_id=frame.turn_id, text=item, index=len(pieces))
                        first_s = first_s or token.at_s
                        pieces.append(item)
                        yield token
                    else:
                        result = item
                        yield item
                if isinstance(result, ToolCallRequested):
                    break  # the client runs it, then asks for the answer
                calls += 1
                # the answer is written from the result (up to MAX_CALLS calls in all)
                offer = self._offer("auto") if calls < MAX_CALLS else None
                messages = await self._prompt("", frame.turn_id, instructions)
            completed = True
        finally:
            self._answer_waits.clear()  # (an answer cancelled before it started)
            # An interrupted answer is remembered as far as it went (the live loop narrows it
            # to what was actually spoken).
            if pieces or not called:
                self.conversation.add_assistant("".join(pieces).strip(), frame.turn_id)
        # While the answer is being spoken, put the history as it will be re-read into the KV
        # cache (the stored text re-tokenizes differently from the generated tokens), once
        # its last clause, which may not be synthesized yet, has had the cores.
        self._warm_up_later(self.conversation.snapshot(), background=True)
        if completed:
            yield LLMDone(
                turn_id=frame.turn_id,
                text="".join(pieces).strip(),
                n_tokens=len(pieces),
                first_token_s=first_s,
                last_token_s=last_s,
                truncated=looping or len(pieces) >= self._max_tokens,
            )


def _begins(text: str, start: str) -> bool:
    """Whether ``text``'s words begin with all of ``start``'s."""
    words, first = text.split(), start.split()
    return words[: len(first)] == first


async def _say(turn_id: int, text: str) -> AsyncIterator[Frame]:
    """A fixed answer (a tool's) as the LLM's would come: word by word."""
    pieces = [w + " " for w in text.split()]
    if pieces:
        pieces[-1] = pieces[-1].rstrip()
    first_s = last_s = 0.0
    for i, piece in enumerate(pieces):
        token = LLMToken(turn_id=turn_id, text=piece, index=i)
        first_s = first_s or token.at_s
        last_s = token.at_s
        yield token
    yield LLMDone(
        turn_id=turn_id,
        text=text,
        n_tokens=0,  # no model wrote it: no tokens per second to show
        first_token_s=first_s,
        last_token_s=last_s,
    )


def _used(turn_id: int, call: ToolCall, arguments: str, outcome: Outcome, by: str) -> ToolUsed:
    return ToolUsed(
        turn_id=turn_id,
        name=call.name,
        arguments=arguments,
        output=outcome.output,
        error=outcome.error,
        chosen_by=by,
    )


async def _ended(pieces: AsyncIterator[str]) -> AsyncIterator[str | None]:
    """``pieces``, then None."""
    async for piece in pieces:
        yield piece
    yield None


class _Answer:
    """The model's text, told apart from a tool call: pieces that may still be the start
    of a call are held back until that is known."""

    def __init__(self, may_call: bool) -> None:
        self._held: list[str] | None = [] if may_call else None
        self.call: str | None = None
        """The call's text, when the answer is one."""

    def feed(self, piece: str | None) -> list[str]:
        """The pieces to say now (``None``: the answer has ended)."""
        if piece is None:
            held, self._held = self._held or [], None
            return held
        if self.call is not None:
            self.call += piece
            return []
        if self._held is None:
            return [piece]
        self._held.append(piece)
        text = "".join(self._held)
        kind = classify(text)
        if kind == "maybe":
            return []
        held, self._held = self._held, None
        if kind == "call":
            self.call = text
            return []
        return held
