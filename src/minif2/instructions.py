"""Task instructions: the one sentence that tells an embedder what a QUERY is for.

F2LLM (docs/recipe.md §1) prefixes every training query with a task-specific instruction and
leaves documents plain; at evaluation time it uses the same style of prompt per MTEB
task (docs/recipe.md §1a: ``Instruct: {instruction}\\nQuery: `` on queries only). This module is
the single registry of those sentences, looked up by source name, task name or task
type, so that training (``data/unify.py``) and evaluation (``evaluation/evaluate.py``) agree.

- ``SOURCE_INSTRUCTIONS``: the kit's training/evaluation sources (offline and hub).
- MTEB task names: F2LLM's own prompts as registered in mteb
  (``mteb.models.model_implementations.codefuse_models.prompts_dict``), read lazily;
  ``MTEB_FALLBACK`` keeps a few of them for when that private path moves.
- ``TYPE_INSTRUCTIONS``: a default per task type, in the same style.

It does not format queries (``model.format_query`` does). Taught in
``notebooks/01_data_unification.ipynb``.
"""

from __future__ import annotations

import re
import warnings
from functools import lru_cache

__all__ = [
    "MTEB_FALLBACK",
    "SOURCE_INSTRUCTIONS",
    "TYPE_INSTRUCTIONS",
    "instruction_for",
    "mteb_instructions",
    "split_instruction",
]

_INSTRUCTED = re.compile(r"\AInstruct: (?P<instruction>.*?)\nQuery: (?P<text>.*)\Z", re.DOTALL)

# task type -> default instruction (Qwen3-Embedding / F2LLM style: imperative, one sentence)
TYPE_INSTRUCTIONS: dict[str, str] = {
    "retrieval": "Given a question, retrieve passages that answer the question.",
    "reranking": "Given a query, retrieve passages relevant to the query.",
    "sts": "Retrieve semantically similar text.",
    "nli": "Given a premise, retrieve a hypothesis that is entailed by the premise.",
    "pair_classification": "Retrieve semantically entailed text.",
    "classification": "Classify the topic of the given text.",
    "clustering": "Identify the topic or theme of the given text.",
    "summarization": "Given a news summary, retrieve other semantically similar summaries.",
}

# source or held-out task name -> instruction; the kit's own sources first, then common hub sources
SOURCE_INSTRUCTIONS: dict[str, str] = {
    # offline sources (data/sources.py) and the held-out tasks built from them (data/unify.py)
    "code_search": "Given a description of what a Python function does, retrieve the function's code.",
    "code_library": "Classify the given Python docstring by the library it comes from.",
    "code_modules": "Identify the module a Python docstring belongs to.",
    "lee_news": "Given the opening sentence of a news article, retrieve the rest of the article.",
    "word_similarity": "Retrieve words that are semantically similar to the given word.",
    "wiki_paragraphs": "Given the opening sentence of a Wikipedia paragraph, retrieve the rest of the paragraph.",
    "wiki_articles": "Identify the topic or theme of the given Wikipedia paragraph.",
    "CodeSearchHeldOut": "Given a description of what a Python function does, retrieve the function's code.",
    "LeeSTS": "Retrieve semantically similar text.",
    "TeacherAgreement": "Retrieve semantically similar text.",
    "PolarityClassification": "Classify the sentiment expressed in the given movie review sentence as positive "
    "or negative.",
    "NewsgroupsClustering": "Identify the topic or theme of the given news articles.",
    "CodeLibraryClassification": "Classify the given Python docstring by the library it comes from.",
    # hub training sources (F2LLM's published data uses names like these)
    "msmarco": "Given a web search query, retrieve relevant passages that answer the query.",
    "nq": "Given a question, retrieve Wikipedia passages that answer the question.",
    "hotpotqa": "Given a multi-hop question, retrieve documents that can help answer the question.",
    "fever": "Given a claim, retrieve documents that support or refute the claim.",
    "squad": "Given a question, retrieve Wikipedia passages that answer the question.",
    "snli": "Given a premise, retrieve a hypothesis that is entailed by the premise.",
    "mnli": "Given a premise, retrieve a hypothesis that is entailed by the premise.",
    "quora": "Given a question, retrieve questions that are semantically equivalent to the given question.",
    "stsbenchmark": "Retrieve semantically similar text.",
}

# A few of F2LLM's MTEB prompts, used only when mteb's registry cannot be imported.
MTEB_FALLBACK: dict[str, str] = {
    "ArguAna": "Given a claim, find documents that refute the claim.",
    "Banking77Classification": "Given an online banking query, find the corresponding intents.",
    "ImdbClassification": "Classify the sentiment expressed in the given movie review text from the IMDB dataset.",
    "STSBenchmark": "Retrieve semantically similar text.",
    "TwentyNewsgroupsClustering.v2": "Identify the topic or theme of the given news articles.",
    "SCIDOCS": "Given a scientific paper title, retrieve paper abstracts that are cited by the given paper.",
}


@lru_cache(maxsize=1)
def mteb_instructions() -> dict[str, str]:
    """F2LLM's per-task MTEB prompts as mteb registers them (docs/recipe.md §1a), or the fallback table."""
    try:
        from mteb.models.model_implementations.codefuse_models import prompts_dict  # noqa: PLC0415 - private path of mteb, may move
    except ImportError as err:  # mteb absent, or the private path moved: say so, the fallback knows 6 tasks only
        warnings.warn(
            f"F2LLM's MTEB prompts are not importable from mteb ({err}); using the {len(MTEB_FALLBACK)} prompts of "
            "minif2.instructions.MTEB_FALLBACK, other MTEB tasks get their task type's default instruction",
            stacklevel=2,
        )
        return dict(MTEB_FALLBACK)
    return {k: v for k, v in prompts_dict.items() if isinstance(v, str) and v}


def instruction_for(task_or_source: str, task_type: str | None = None) -> str:
    """The instruction for a source or task name, else the default of its task type.

    Lookup order: exact source/task name in ``SOURCE_INSTRUCTIONS``, the same name
    lower-cased, F2LLM's MTEB prompts, then ``TYPE_INSTRUCTIONS[task_type]``.

    >>> instruction_for("LeeSTS")
    'Retrieve semantically similar text.'
    >>> instruction_for("my_new_source", "classification")
    'Classify the topic of the given text.'
    """
    for table in (SOURCE_INSTRUCTIONS, {k.lower(): v for k, v in SOURCE_INSTRUCTIONS.items()}):
        if task_or_source in table:
            return table[task_or_source]
        if task_or_source.lower() in table:
            return table[task_or_source.lower()]
    mteb = mteb_instructions()
    if task_or_source in mteb:
        return mteb[task_or_source]
    if task_type is not None:
        key = task_type.lower().replace("pairclassification", "pair_classification")
        if key in TYPE_INSTRUCTIONS:
            return TYPE_INSTRUCTIONS[key]
    raise KeyError(
        f"no instruction for '{task_or_source}' (task type {task_type!r}): add it to "
        f"minif2.instructions.SOURCE_INSTRUCTIONS or pass a task type from {sorted(TYPE_INSTRUCTIONS)}"
    )


BASE = "Base"  # the condition without any instruction


DEFAULT_INSTRUCTIONS: dict[str, str] = {  # docs/recipe.md §3, English renderings of the study's
    "Retrieval": "Given a query, retrieve passages that answer the query.",
    "Reranking": "Given a query, retrieve passages relevant to the query.",
    "STS": "Given a query, find the passage most semantically similar to it.",
    "Classification": "Classify the given query into the appropriate category.",
    "Clustering": "Identify the topic of the given query.",
}


def split_instruction(query: str) -> tuple[str | None, str]:
    """``"Instruct: {i}\\nQuery: {q}"`` -> ``(i, q)``; a query without that prefix -> ``(None, query)``.

    Imported queries that already carry F2LLM's prompt keep their instruction, stored raw, so
    the query is prefixed exactly once when it is encoded (``model.format_query``).

    >>> split_instruction("Instruct: Find the topic.\\nQuery: tea prices")
    ('Find the topic.', 'tea prices')
    >>> split_instruction("tea prices")
    (None, 'tea prices')
    """
    match = _INSTRUCTED.match(query)
    return (match["instruction"], match["text"]) if match else (None, query)
