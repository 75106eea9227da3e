"""``minif2 tokenize``: token ids stored once per document in a corpus-layout folder (``data/corpus.py``).

F2LLM-v2 tokenizes its data before training (``F2LLM/tokenize_data_qwen.py``, docs/recipe.md §1b): every
distinct document once, truncated to ``max_seq_length`` (2047) tokens and THEN given an EOS, so the
last-token pooling always finds one; the trainer only looks ids up (``F2LLM/run.py``). Here the ids are
made by the embedder's own tokenizer call (``Embedder.tokenize`` without padding): its post-processor
appends the EOS after truncation when the model pools the last token (``model.py``), which is the
same rule, and the ids are exactly what the trainer would have computed from the text.

The corpus is rewritten batch by batch with an ``input_ids`` column; the manifest's ``tokenized``
record (model, ``max_length_tokens``, a sha256 of the tokenizer) lets the trainer use the ids only
for the same tokenizer and length (:func:`ids_fit`), and tokenize the texts otherwise. Queries are
not pre-tokenized: their instruction is added at batch time (``model.format_query``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from minif2.config import MissingInputError, load_config
from minif2.data.corpus import CORPUS_FILE, is_corpus_layout
from minif2.provenance import file_sha256

__all__ = ["PretokenizeConfig", "cli", "document_token_ids", "ids_fit", "main", "tokenizer_record"]


@dataclass
class PretokenizeConfig:
    """What to tokenize and with which model; the length must be the training run's ``max_length_tokens``."""

    data_dir: str = "runs/latest/data/unified"  # a corpus-layout folder (unify with `layout: corpus`)
    model: str = "tiny-qwen3"  # an asset name, hub id or folder: the model that will be trained
    max_length_tokens: int = 1024  # F2LLM: 1024 in training (its tokenizer script keeps 2047 + EOS)
    batch_size: int = 4096  # documents tokenized and written at a time


def tokenizer_record(embedder: Any) -> dict[str, Any]:
    """How ids were made: model, length, and a sha256 of the tokenizer (vocabulary, post-processor included)."""
    return {
        "model": embedder.config.model,
        "max_length_tokens": int(embedder.config.max_length_tokens),
        "tokenizer_sha256": _tokenizer_sha256(embedder.tokenizer),
        "eos_appended": bool(embedder.config.append_eos),
    }


_DIGESTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # tokenizer -> sha256 (the trainer asks per batch)


def _tokenizer_sha256(tokenizer: Any) -> str:
    """sha256 of the tokenizer's definition (vocabulary, merges, post-processor), computed once per object."""
    if tokenizer not in _DIGESTS:
        state = json.loads(tokenizer.backend_tokenizer.to_str())
        state.pop("truncation", None), state.pop("padding", None)  # set by the last call, not part of the tokenizer
        _DIGESTS[tokenizer] = hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()
    return _DIGESTS[tokenizer]


def ids_fit(tokenized: dict[str, Any] | None, embedder: Any) -> bool:
    """True when ids stored with record ``tokenized`` are what ``embedder`` would compute from the texts."""
    if not tokenized:
        return False
    mine = tokenizer_record(embedder)
    return all(tokenized.get(k) == mine[k] for k in ("max_length_tokens", "tokenizer_sha256", "eos_appended"))


def document_token_ids(embedder: Any, texts: list[str]) -> list[list[int]]:
    """The unpadded ids ``embedder.tokenize`` gives ``texts``: truncated, then EOS when the model appends one.

    >>> from minif2.model import Embedder
    >>> e = Embedder.from_pretrained("tiny-qwen3", max_length_tokens=4)
    >>> ids = document_token_ids(e, ["a long text of many words"])[0]
    >>> len(ids), ids[-1] == e.tokenizer.eos_token_id
    (4, True)
    """
    out = embedder.tokenizer(list(texts), truncation=True, max_length=embedder.config.max_length_tokens)
    return out["input_ids"]


def main(cfg: PretokenizeConfig) -> Path:
    """Add ``input_ids`` to ``<data_dir>/corpus.parquet`` (rewritten in batches) and record how in the manifest."""
    from minif2.model import Embedder  # noqa: PLC0415 - torch and the model load only for this command

    folder = Path(cfg.data_dir)
    if not is_corpus_layout(folder):
        raise MissingInputError(
            f'{folder} is not a corpus-layout folder (manifest.json without "layout": "corpus"); '
            "run `minif2 unify` with `layout: corpus` first"
        )
    embedder = Embedder.from_pretrained(cfg.model, max_length_tokens=cfg.max_length_tokens)
    source, staged = folder / CORPUS_FILE, folder / (CORPUS_FILE + ".tokenizing")
    file = pq.ParquetFile(source)
    schema = pa.schema([("doc_id", pa.int32()), ("text", pa.string()), ("input_ids", pa.list_(pa.int32()))])
    with pq.ParquetWriter(staged, schema) as writer:
        for batch in file.iter_batches(batch_size=cfg.batch_size, columns=["doc_id", "text"]):
            ids = pa.array(document_token_ids(embedder, batch["text"].to_pylist()), pa.list_(pa.int32()))
            writer.write_table(pa.table([batch["doc_id"], batch["text"], ids], schema=schema))
    os.replace(staged, source)
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["tokenized"] = tokenizer_record(embedder)
    manifest.setdefault("fingerprints", {})["corpus"] = file_sha256(source)
    manifest_path.write_text(json.dumps(manifest, indent=2))
    print(f"tokenized {file.metadata.num_rows} documents of {source} with {cfg.model} ({cfg.max_length_tokens} tokens)")
    return folder


def cli(argv: list[str] | None = None) -> int:
    """``minif2 tokenize --data-dir DIR --model NAME [--max-length-tokens N]``."""
    parser = argparse.ArgumentParser(prog="minif2 tokenize", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="a corpus-layout unified folder")
    parser.add_argument("--model", help="the model to be trained (asset name, hub id or folder)")
    parser.add_argument("--max-length-tokens", type=int, help="the training run's max_length_tokens")
    args = parser.parse_args(argv)
    overrides = {"data_dir": args.data_dir, "model": args.model, "max_length_tokens": args.max_length_tokens}
    main(load_config(PretokenizeConfig, None, **overrides))
    return 0
