"""Pooling: a sequence of hidden states -> one vector, and which tokens take part.

F2LLM (docs/recipe.md §1a) pools the last token, the EOS, which has seen the whole input,
instruction included. Mean pooling (QZhou, MiniLM) averages every real token; for a query that
carries ``Instruct: {instruction}\\nQuery: {text}`` the instruction's tokens are then part of the
average, and for a short text they are most of it: every classification or clustering text of one
task shares them, so they pull all its vectors the same way. GritLM (arXiv 2402.09906, §2) mean-pools
over the input sample only, leaving the instruction and format tokens out of the average; the
instruction still shapes the text's states through attention. ``EmbedderConfig.pool_instruction =
False`` does that (docs/recipe.md §4).

How the tokens are marked: the attention mask gets the value :data:`INSTRUCTION` (2) on the
instruction's tokens, which are attended (``mask > 0``) but not pooled (``mask == 1``). That keeps
one tensor per batch through the training backends and gradient caching. The instruction's length
follows sentence-transformers' rule (``Pooling(include_prompt=False)``): the prompt tokenized alone,
a trailing special token not counted, the first that many tokens of the text skipped -- so a saved
model gives the same vectors in both libraries. With SmolLM2's tokenizer the prompt alone ends in a
lone space token, so the text's first word (which carries that space) is skipped too; it still
reaches the later tokens through attention. A text that would be skipped whole keeps its last token.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch

__all__ = ["INSTRUCTION", "Pooling", "instruction_prefix", "mark_instructions", "pool"]

Pooling = Literal["last", "mean"]
INSTRUCTION = 2  # attention-mask value of an instruction token: attended, not pooled


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: Pooling) -> torch.Tensor:
    """(batch, seq, dim) hidden states -> (batch, dim), ignoring padding on either side.

    ``mean`` averages the positions whose mask is 1 (not padding, not a marked instruction);
    ``last`` takes the last position whose mask is not 0, which is the EOS under right
    padding (positions vary) and under left padding (always the final column).

    >>> h = torch.tensor([[[1.0], [2.0], [6.0]]])
    >>> pool(h, torch.tensor([[1, 1, 1]]), "mean"), pool(h, torch.tensor([[2, 1, 1]]), "mean")
    (tensor([[3.]]), tensor([[4.]]))
    """
    if pooling == "mean":
        mask = (attention_mask == 1).to(hidden.dtype)  # (batch, seq)
        summed = (hidden * mask.unsqueeze(-1)).sum(dim=1)
        return summed / mask.sum(dim=1, keepdim=True).clamp(min=1e-9)
    if pooling == "last":
        real = (attention_mask > 0).long()
        last = real.shape[1] - 1 - real.flip(dims=[1]).argmax(dim=1)  # (batch,)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    raise ValueError(f"unknown pooling '{pooling}': use 'last' or 'mean'")


def instruction_prefix(text: str, template: str) -> str | None:
    """The instruction part of a query formatted with ``template``, or None for a plain text.

    >>> instruction_prefix("Instruct: Find code.\\nQuery: sort a list", "Instruct: {instruction}\\nQuery: {text}")
    'Instruct: Find code.\\nQuery: '
    >>> instruction_prefix("sort a list", "Instruct: {instruction}\\nQuery: {text}") is None
    True
    """
    head, _, rest = template.partition("{instruction}")
    marker = rest.partition("{text}")[0]
    if not text.startswith(head) or not marker or marker not in text[len(head) :]:
        return None
    return text[: text.index(marker, len(head)) + len(marker)]


def _prompt_length(tokenizer: Any, prefix: str) -> int:
    ids = tokenizer(prefix)["input_ids"]
    return len(ids) - (1 if ids and ids[-1] in tokenizer.all_special_ids else 0)


def mark_instructions(
    attention_mask: torch.Tensor, texts: Sequence[str], template: str, tokenizer: Any
) -> torch.Tensor:
    """A copy of ``attention_mask`` with each query's instruction tokens set to :data:`INSTRUCTION`.

    At least one token of every text stays poolable (a text truncated inside its instruction).
    """
    marked = attention_mask.clone()
    rank = attention_mask.long().cumsum(dim=1)  # 1, 2, ... over real tokens, whatever the padding side
    lengths: dict[str, int] = {}  # a batch shares one or a few instructions: tokenize each once
    for row, text in enumerate(texts):
        prefix = instruction_prefix(text, template)
        if prefix is None:
            continue
        if prefix not in lengths:
            lengths[prefix] = _prompt_length(tokenizer, prefix)
        n = min(lengths[prefix], int(attention_mask[row].sum()) - 1)
        marked[row][(attention_mask[row] > 0) & (rank[row] <= n)] = INSTRUCTION
    return marked
