"""A self-contained, deterministic word-piece tokenizer (no downloads, no vocabulary files).

Why not tiktoken: its encodings are fetched from the network on first use, so it cannot run in
an offline CI job. This tokenizer follows the shape of GPT-style byte-pair tokenizers closely
enough that prompt changes cost tokens the way they do with a real model:

1. pre-tokenisation with a GPT-2-like regular expression: English contractions, runs of letters
   with their leading space, runs of up to three digits, punctuation runs, whitespace;
2. word-piece splitting of long letter runs: a word of up to ``WHOLE_WORD_MAX`` letters stays one
   token (common words are single tokens in BPE vocabularies); longer words split into pieces of
   ``PIECE_LEN`` letters, the way rare words split into several subword units;
3. non-ASCII characters cost one token per UTF-8 byte pair (byte-level fallback).

Every token is a substring of the input and the tokens concatenate back to the input exactly
(property-tested). The counts are an approximation of a real model's tokenizer, not a copy of one.
"""

from __future__ import annotations

import re

__all__ = ["TOKENIZER_NAME", "count_tokens", "tokenize"]

TOKENIZER_NAME = "fusion-wordpiece-v2"
WHOLE_WORD_MAX = 8
PIECE_LEN = 5

_PRETOKEN = re.compile(
    r"'(?:s|t|re|ve|m|ll|d)\b"  # contractions
    r"| ?[A-Za-z]+"  # ASCII words with their leading space
    r"| ?[0-9]{1,3}"  # digits, three at most per token
    r"| ?[^\sA-Za-z0-9]+"  # punctuation and non-ASCII runs
    r"|\s+(?!\S)|\s+",  # whitespace
)


def _split_word(piece: str) -> list[str]:
    lead = " " if piece.startswith(" ") else ""
    word = piece[len(lead) :]
    if len(word) <= WHOLE_WORD_MAX:
        return [piece]
    parts = [word[i : i + PIECE_LEN] for i in range(0, len(word), PIECE_LEN)]
    parts[0] = lead + parts[0]
    return parts


_ASCII_OR_NOT = re.compile(r"[\x00-\x7f]+|[^\x00-\x7f]+")


def _split_other(piece: str) -> list[str]:
    """An ASCII punctuation run is one token; non-ASCII text costs a token per two UTF-8 bytes.

    A run mixing both is split where it changes, so a non-ASCII character next to punctuation
    does not turn the punctuation into byte-level tokens (joining two texts then costs at most a
    couple of tokens more than the parts, as with a real BPE tokenizer)."""
    out: list[str] = []
    for run in _ASCII_OR_NOT.findall(piece):
        if run.isascii():
            out.append(run)
            continue
        current = ""
        budget = 0
        for char in run:
            size = len(char.encode("utf-8"))
            if current and budget + size > 2:
                out.append(current)
                current, budget = "", 0
            current += char
            budget += size
        out.append(current)
    return out


def tokenize(text: str) -> list[str]:
    """Split ``text`` into tokens; ``"".join(tokenize(t)) == t`` for every string."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    tokens: list[str] = []
    for match in _PRETOKEN.finditer(text):
        piece = match.group()
        core = piece.lstrip(" ")
        if core[:1].isascii() and core[:1].isalpha():
            tokens.extend(_split_word(piece))
        else:
            tokens.extend(_split_other(piece))
    return tokens


def count_tokens(text: str) -> int:
    """Number of tokens in ``text``."""
    return len(tokenize(text))
