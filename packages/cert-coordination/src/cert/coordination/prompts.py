"""Prompts of the agents, the aggregator and the debate; ``PROMPT_VERSION`` is in cache keys.

Change any text here and bump ``PROMPT_VERSION``, so cached baselines made with the old prompts are
not reused.
"""

from __future__ import annotations

from collections.abc import Sequence

PROMPT_VERSION = "agents-v1"

AGENT_SYSTEM = (
    "You are agent {index} of a team. Answer the task directly and concisely; "
    "do not mention the team."
)


def solo(task: str) -> str:
    """An independent agent's (and a baseline's) first answer."""
    return f"Task:\n{task}\n\nGive your best answer."


def improve(task: str, previous: str) -> str:
    """Sequential strategy: improve the previous agent's answer."""
    return (
        f"Task:\n{task}\n\nA previous agent answered:\n<answer>\n{previous}\n</answer>\n\n"
        "Improve this answer: fix errors, fill gaps, keep what is right. Reply with the full "
        "improved answer only."
    )


def aggregate(task: str, answers: Sequence[str]) -> str:
    """Parallel strategy (and debate synthesis): merge independent answers into one."""
    listed = "\n\n".join(f"<answer id={i + 1}>\n{a}\n</answer>" for i, a in enumerate(answers))
    return (
        f"Task:\n{task}\n\nSeveral agents answered independently:\n\n{listed}\n\n"
        "Write the single best answer, combining their correct points and discarding mistakes. "
        "Reply with the answer only."
    )


def debate(task: str, own: str, others: Sequence[str], round_no: int) -> str:
    """Debate round ``round_no`` (≥2): revise one's position after reading the others'."""
    listed = "\n\n".join(f"<position id={i + 1}>\n{a}\n</position>" for i, a in enumerate(others))
    return (
        f"Task:\n{task}\n\nDebate round {round_no}. Your current position:\n<position>\n{own}\n"
        f"</position>\n\nThe other agents' positions:\n\n{listed}\n\n"
        "Critically consider their arguments, then state your revised answer in full."
    )
