"""score() with a chat template and joint tokenisation (issue 15), on the locally trained model."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from cert.trajectory import ConfigError, HamiltonianMonitor, TrajectoryConfig
from cert.trajectory.cli import main
from cert.trajectory.engine import score_input_ids

CONFIG = TrajectoryConfig(max_new_tokens=4, max_mean_entropy=6.0, max_perplexity=1e6)
# A ChatML-like template: turn markers are plain text for this tokenizer, which is fine here.
TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}{{ eos_token }}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
Reference = Callable[[Any, list[int], int], tuple[list[float], list[float]]]


@pytest.fixture(scope="module")
def chat(tiny: tuple[Any, Any]) -> tuple[Any, Any, HamiltonianMonitor]:
    model, tokenizer = tiny
    templated = copy.deepcopy(tokenizer)
    templated.chat_template = TEMPLATE
    monitor = HamiltonianMonitor(
        model=model, tokenizer=templated, config=CONFIG, cache_size=0, preload=True
    )
    return model, templated, monitor


def test_score_with_the_chat_template_equals_the_rendered_conversation(
    chat: tuple[Any, Any, HamiltonianMonitor], plain_teacher_forced: Reference
) -> None:
    model, tokenizer, monitor = chat
    result = monitor.score(
        "Return the number of items.", "It returns the length.", chat_template=True,
        system="You are terse.",
    )  # fmt: skip
    rendered = (
        "<|system|>\nYou are terse.<|endoftext|><|user|>\nReturn the number of items."
        "<|endoftext|><|assistant|>\n"
    )
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Return the number of items."},
    ]
    assert tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) == (
        rendered
    )
    context = tokenizer(rendered, add_special_tokens=False)["input_ids"]
    ids = tokenizer(rendered + "It returns the length.", add_special_tokens=False)["input_ids"]
    assert ids[: len(context)] == context
    assert [t.token_id for t in result.tokens] == ids[len(context) :]
    log_probs, entropies = plain_teacher_forced(model, ids, len(context))
    assert [t.log_prob for t in result.tokens] == pytest.approx(log_probs, abs=1e-5)
    assert [t.entropy for t in result.tokens] == pytest.approx(entropies, abs=1e-5)
    assert result.decoding == {
        "strategy": "teacher_forced", "tokenisation": "joint", "chat_template": True,
        "boundary_merged": False,
    }  # fmt: skip
    plain = monitor.score("Return the number of items.", "It returns the length.")
    assert [t.log_prob for t in plain.tokens] != [t.log_prob for t in result.tokens]


def test_joint_tokenisation_is_how_the_model_sees_the_text(
    chat: tuple[Any, Any, HamiltonianMonitor],
) -> None:
    _, tokenizer, monitor = chat
    prompt, response = "Return a new li", "st of items."
    full = tokenizer(prompt + response)["input_ids"]
    joint = score_input_ids(tokenizer, prompt, response)
    assert joint.context_ids + joint.response_ids == full
    separate = score_input_ids(tokenizer, prompt, response, tokenisation="separate")
    assert separate.context_ids + separate.response_ids != full  # "li" + "st" vs "list"
    assert joint.boundary_merged
    result = monitor.score(prompt, response)
    assert [t.token_id for t in result.tokens] == joint.response_ids
    assert result.decoding["boundary_merged"] is True
    old = monitor.score(prompt, response, tokenisation="separate")
    assert [t.token_id for t in old.tokens] == separate.response_ids


def test_chat_template_errors_name_the_field(
    tiny: tuple[Any, Any], chat: tuple[Any, Any, HamiltonianMonitor]
) -> None:
    model, tokenizer = tiny
    no_template = copy.deepcopy(tokenizer)
    no_template.chat_template = None
    monitor = HamiltonianMonitor(
        model=model, tokenizer=no_template, config=CONFIG, cache_size=0, preload=True
    )
    with pytest.raises(ConfigError) as info:
        monitor.score("Return the", " list.", chat_template=True)
    assert info.value.context["field"] == "chat_template"
    _, _, templated = chat
    for kwargs, field in [
        ({"system": "x"}, "system"),  # system without the template
        ({"tokenisation": "bytes"}, "tokenisation"),
        ({"chat_template": "yes"}, "chat_template"),
    ]:
        with pytest.raises(ConfigError) as info:
            templated.score("Return the", " list.", **kwargs)
        assert info.value.context["field"] == field


def test_cli_score_with_chat_template_needs_a_template(
    tiny_model_dir: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["score", "--model", str(tiny_model_dir), "--device", "cpu", "--prompt", "Return the",
         "--response", " list.", "--chat-template", "--max-mean-entropy", "6.0"]
    )  # fmt: skip
    assert code == 2
    assert "chat template" in capsys.readouterr().err
