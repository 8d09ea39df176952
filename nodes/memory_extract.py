"""Model-based memory extraction: the chat model's structured output behind the same interface as the rules."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Literal, Protocol

from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, ConfigDict, Field

from nodes.memory_rules import Candidate, Entities, RuleExtractor, normalise_subject, normalise_value, with_method
from nodes.models import ModelLoader
from state.cards import ModelTier
from state.memory import MemoryKind

log = logging.getLogger(__name__)

MEMORY_EXTRACTION_PROMPT = """You extract long-term memories from one message the user sent to their assistant.
Return only durable facts, preferences, standing instructions and decisions the user states; never questions,
requests, small talk, opinions of the moment, or anything true only today. Never return secrets (passwords,
keys, tokens, card numbers).
For each memory give:
- action: "remember", or "forget" when the user asks to forget something or says it is no longer true
- text: one short self-contained sentence with the current truth only (no old values: "my editor is Helix",
  not "I switched from Vim to Helix")
- kind: fact | preference | decision | project | episode
- subject: a short key <entity>/<attribute> in lowercase with underscores, e.g. user/home_city,
  client:hartley/support_hours, project:airep/staging_server, user/pref/spelling. Reuse a key from the
  existing memories below when the message is about the same thing.
- value: the value the subject now has, e.g. "York"
- explicit: true when the user asked you to remember or forget
- confidence: 0..1
Known projects and clients: {entities}
Existing memories that may be about the same things:
{hints}
Return {{"memories": []}} when there is nothing worth remembering."""


class Extractor(Protocol):
    """Turns a user message into candidate memories."""

    name: str

    async def extract(self, text: str, hints: Sequence[str] = ()) -> list[Candidate]:
        """Return candidates; `hints` are existing memories the message may be about."""
        ...


class ExtractedMemory(BaseModel):
    """One memory the model extracted."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["remember", "forget"] = "remember"
    text: str
    kind: MemoryKind = "fact"
    subject: str
    value: str = ""
    explicit: bool = False
    confidence: float = 0.7


class MemoryExtraction(BaseModel):
    """The model's structured answer."""

    model_config = ConfigDict(extra="forbid")

    memories: list[ExtractedMemory] = Field(default_factory=list)


class ModelExtractor:
    """Extract with the chat model's structured output; fall back to the rules if the call fails."""

    name = "model"

    def __init__(
        self, models: ModelLoader, entities: Entities, *, tier: ModelTier = "fast", timeout_s: float = 30.0
    ) -> None:
        self.models = models
        self.entities = entities
        self.tier = tier
        self.timeout_s = timeout_s
        self.fallback = RuleExtractor(entities)
        self.failures = 0

    async def extract(self, text: str, hints: Sequence[str] = ()) -> list[Candidate]:
        """Ask the model; on any failure use the rule extractor for this message."""
        prompt = MEMORY_EXTRACTION_PROMPT.format(
            entities=", ".join(self.entities.names()) or "none declared",
            hints="\n".join(f"- {h}" for h in hints) or "- none",
        )
        model = self.models.for_tier(self.tier).with_structured_output(MemoryExtraction, method="json_schema")
        try:
            out = await asyncio.wait_for(
                model.ainvoke([SystemMessage(prompt), HumanMessage(text)]), timeout=self.timeout_s
            )
            extraction = out if isinstance(out, MemoryExtraction) else MemoryExtraction.model_validate(out)
        except Exception as exc:  # transport, timeout and parse failures all fall back the same way
            self.failures += 1
            log.warning("model memory extraction failed (%s); using rules", type(exc).__name__)
            return with_method(self.fallback.extract_sync(text), "rules")
        candidates = []
        for item in extraction.memories:
            try:
                subject = normalise_subject(item.subject)
            except ValueError:
                continue
            body = item.text.strip()
            if not body:
                continue
            candidates.append(
                Candidate(
                    text=body,
                    kind=item.kind,
                    subject=subject,
                    value=normalise_value(item.value or body),
                    confidence=max(0.0, min(1.0, item.confidence)) * 0.9,
                    explicit=item.explicit,
                    action=item.action,
                    method="model",
                )
            )
        return candidates
