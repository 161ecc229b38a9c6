"""An edit request: which fact to change, and the prompts that probe it.

    EditRequest(prompt="{} plays the sport of", subject="Michael Jordan", target_new="baseball")

`prompt` holds "{}" where the subject goes; a prompt with the subject written out is accepted
and turned into that form. Optional fields carry what evaluation needs (paraphrase and
neighbourhood prompts, the true object).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .tokens import template_of


class EditRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: str
    subject: str
    target_new: str
    target_true: str | None = None
    case_id: int | str | None = None
    paraphrase_prompts: list[str] = Field(default_factory=list)  # full prompts, subject written out
    neighborhood_prompts: list[str] = Field(default_factory=list)  # prompts whose answer is target_true
    neighborhood_answer: str | None = None  # for zsRE-style locality with its own answer

    @field_validator("subject")
    @classmethod
    def _subject(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("the subject is empty: give the entity whose fact is edited")
        return v

    @field_validator("target_new")
    @classmethod
    def _target(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("target_new is empty: give the new object the prompt should complete to")
        return v

    @model_validator(mode="after")
    def _template(self) -> "EditRequest":
        object.__setattr__(self, "prompt", template_of(self.prompt, self.subject))
        return self

    @property
    def text(self) -> str:
        return self.prompt.replace("{}", self.subject, 1)

    @classmethod
    def from_counterfact(cls, record: dict) -> "EditRequest":
        """A CounterFact case, flat (EasyEdit) or original ROME format (requested_rewrite)."""
        if "requested_rewrite" in record:
            rw = record["requested_rewrite"]
            return cls(
                prompt=rw["prompt"],
                subject=rw["subject"],
                target_new=rw["target_new"]["str"],
                target_true=rw["target_true"]["str"],
                case_id=record.get("case_id"),
                paraphrase_prompts=list(record.get("paraphrase_prompts", [])),
                neighborhood_prompts=list(record.get("neighborhood_prompts", [])),
                neighborhood_answer=rw["target_true"]["str"],  # ROME's neighbours are subjects with the same true object
            )
        return cls(
            prompt=record["prompt"],
            subject=record["subject"],
            target_new=record["target_new"],
            target_true=record.get("ground_truth"),
            case_id=record.get("case_id"),
            paraphrase_prompts=[record["rephrase_prompt"]] if record.get("rephrase_prompt") else [],
            neighborhood_prompts=[record["locality_prompt"]] if record.get("locality_prompt") else [],
            neighborhood_answer=record.get("locality_ground_truth"),
        )

    @classmethod
    def from_zsre(cls, record: dict) -> "EditRequest":
        """A zsRE question (MEND split, EasyEdit keys: src, subject, alt, answers, rephrase, loc, loc_ans)."""
        answers = record.get("answers") or []
        return cls(
            prompt=record["src"],
            subject=record["subject"],
            target_new=record["alt"],
            target_true=answers[0] if answers else None,
            case_id=record.get("case_id"),
            paraphrase_prompts=[record["rephrase"]] if record.get("rephrase") else [],
            neighborhood_prompts=[record["loc"]] if record.get("loc") else [],
            neighborhood_answer=record.get("loc_ans"),
        )
