"""Step 01: every source into one sample shape, (query, positive, negatives) + instruction.

Modules, in the order the step runs:

- ``validation``: Reading raw records with errors people can act on, and a strict or lenient mode.
- ``sources``: Offline raw sources harvested at run time, and hub sources for users with the hub.
- ``adapters``: Adapters: raw dataset shapes -> F2LLM's one sample shape (query, positive, negatives).
- ``wikipedia``: General English prose offline: the Wikipedia sample in gensim's wheel, as paragraphs per article.
- ``loaders``: Datasets into samples: a hub id or local parquet/jsonl files, including F2LLM's published layout.
- ``holdout``: Held-out tasks from the user's own sources: a seeded split of each import, made before training data.
- ``dedup``: De-duplication of training samples against evaluation data, by normalised-text hashing.
- ``corpus``: The corpus layout of a unified dataset: every document stored once, rows referring to it by id.
- ``f2llm``: Streaming import of F2LLM's released training files into the corpus layout.
- ``pretokenize``: ``minif2 tokenize``: token ids stored once per document in a corpus-layout folder.
- ``task_folders``: Held-out evaluation tasks on disk: the contract between the data step and evaluation.
- ``unify``: Step 01: every source into one sample shape, (query, positive, negatives) + instruction.

Everything a notebook needs is importable from here (``from minif2.data import ...``);
taught in ``notebooks/01_data_unification.ipynb``.
"""

from __future__ import annotations

from minif2.data.adapters import (
    SHAPES,
    from_beir,
    from_classification_examples,
    from_classification_labels,
    from_clustering,
    from_nli,
    from_pairs,
    from_sts,
    import_jsonl,
)
from minif2.data.corpus import CorpusWriter, inline_to_corpus, is_corpus_layout, read_corpus_layout
from minif2.data.dedup import DedupReport, dedup_samples
from minif2.data.f2llm import F2LLM_CAP, ImportCounts, f2llm_files, import_f2llm_file, import_f2llm_folder
from minif2.data.holdout import hold_out_source, retrieval_task, split_by_query, stratified_split
from minif2.data.loaders import HUB_SOURCES, load_hub_source
from minif2.data.pretokenize import PretokenizeConfig
from minif2.data.sources import (
    CODE_LIBRARIES,
    ORIGINS,
    default_cache_dir,
    gensim_file,
    harvest_code_pairs,
    read_lee_background,
    read_lee_sts,
    read_newsgroups,
    read_polarity,
    read_word_similarity,
)
from minif2.data.task_folders import (
    EVAL_TYPES,
    TaskFormatError,
    eval_texts,
    list_eval_tasks,
    read_eval_task,
    write_eval_task,
    write_task_folder,
)
from minif2.data.teacher_agreement import TEACHER_AGREEMENT, sentence_pairs, teacher_agreement_rows
from minif2.data.unify import (
    LIBRARY_NAMES,
    ImportSpec,
    UnifyConfig,
    build_offline,
    cli,
    format_stats,
    main,
    source_stats,
    split_code_pairs,
)
from minif2.data.validation import Numbers, SkipReport, TextList, UnifyError, check_record, read_jsonl, read_tsv
from minif2.data.wikipedia import (
    WIKI_SOURCES,
    WIKIPEDIA_FILE,
    first_sentence_split,
    read_wikipedia,
    split_articles,
    wikipedia_samples,
)

__all__ = [
    "CODE_LIBRARIES",
    "CorpusWriter",
    "F2LLM_CAP",
    "ImportCounts",
    "PretokenizeConfig",
    "f2llm_files",
    "import_f2llm_file",
    "import_f2llm_folder",
    "inline_to_corpus",
    "is_corpus_layout",
    "read_corpus_layout",
    "DedupReport",
    "EVAL_TYPES",
    "HUB_SOURCES",
    "ImportSpec",
    "LIBRARY_NAMES",
    "Numbers",
    "ORIGINS",
    "SHAPES",
    "SkipReport",
    "TaskFormatError",
    "TextList",
    "UnifyConfig",
    "UnifyError",
    "WIKIPEDIA_FILE",
    "WIKI_SOURCES",
    "build_offline",
    "check_record",
    "cli",
    "dedup_samples",
    "default_cache_dir",
    "eval_texts",
    "first_sentence_split",
    "format_stats",
    "from_beir",
    "from_classification_examples",
    "from_classification_labels",
    "from_clustering",
    "from_nli",
    "from_pairs",
    "from_sts",
    "gensim_file",
    "harvest_code_pairs",
    "hold_out_source",
    "import_jsonl",
    "list_eval_tasks",
    "load_hub_source",
    "main",
    "read_eval_task",
    "read_jsonl",
    "read_lee_background",
    "read_lee_sts",
    "read_newsgroups",
    "read_polarity",
    "read_tsv",
    "read_wikipedia",
    "read_word_similarity",
    "retrieval_task",
    "source_stats",
    "split_by_query",
    "split_code_pairs",
    "stratified_split",
    "wikipedia_samples",
    "split_articles",
    "TEACHER_AGREEMENT",
    "sentence_pairs",
    "teacher_agreement_rows",
    "write_eval_task",
    "write_task_folder",
]
