"""Offline raw sources harvested at run time, and hub sources for users with the hub.

The kit must run without the Hugging Face Hub, so its default data is harvested from
what is installed (nothing is committed; caches go to ``data/cache/``, git-ignored):

- docstring -> code pairs parsed with ``ast`` from the Python standard library, numpy,
  torch and transformers (:func:`harvest_code_pairs`), each with its module and
  library, which also give classification and clustering labels;
- human-written corpora shipped in gensim's wheel (``gensim/test/test_data``): the Lee
  news documents with human similarity ratings (STS), Pang & Lee polarity sentences
  (classification), a two-group 20 Newsgroups sample (clustering), Lee background
  news (lead -> body retrieval), WordSim-353 and SimLex-999 (word similarity).

Every source records where it came from and under which licence (``ORIGINS``).
:func:`load_hub_source` reads F2LLM's published training data or an MTEB training set
with ``datasets.load_dataset`` -- the same call reads local parquet/json files, which
is how it is tested offline. F2LLM's 6M samples (docs/recipe.md §1) are NOT reproduced offline.
Taught in ``notebooks/01_data_unification.ipynb``.
"""

from __future__ import annotations

import ast
import copyreg
import hashlib
import importlib.metadata
import importlib.util
import io
import json
import pickle
import platform
import random
import re
import sysconfig
import textwrap
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from gensim.test.utils import datapath
from sklearn.datasets._twenty_newsgroups import strip_newsgroup_footer, strip_newsgroup_quoting
from tqdm.auto import tqdm

from minif2.config import repo_root

__all__ = [
    "CODE_LIBRARIES",
    "ORIGINS",
    "origin_record",
    "default_cache_dir",
    "gensim_file",
    "harvest_code_pairs",
    "read_lee_background",
    "read_lee_sts",
    "read_newsgroups",
    "read_polarity",
    "read_word_similarity",
]

HARVEST_VERSION = 2  # bump when the harvesting rules change, so caches are rebuilt
CODE_LIBRARIES = ("stdlib", "numpy", "torch", "transformers")
_SKIP_DIRS = {
    "test",
    "tests",
    "testing",
    "site-packages",
    "dist-packages",
    "idlelib",
    "lib2to3",
    "ensurepip",
    "turtledemo",
    "tkinter",
    "__pycache__",
    "_vendor",
    "vendored",
    "third_party",
    "benchmarks",
}

# source -> where it comes from and its licence (recorded in every manifest)
ORIGINS: dict[str, dict[str, str]] = {
    "stdlib": {"origin": "CPython standard library source, parsed with ast", "licence": "PSF-2.0"},
    "numpy": {"origin": "numpy package source, parsed with ast", "licence": "BSD-3-Clause"},
    "torch": {"origin": "PyTorch package source, parsed with ast", "licence": "BSD-3-Clause"},
    "transformers": {"origin": "Hugging Face transformers package source, parsed with ast", "licence": "Apache-2.0"},
    "lee_sts": {
        "origin": "gensim test_data lee.cor + similarities0-1.txt (Lee, Pincombe & Welsh 2005, 50 news "
        "documents, mean human ratings)",
        "licence": "research corpus redistributed in gensim's wheel (gensim: LGPL-2.1)",
    },
    "lee_background": {
        "origin": "gensim test_data lee_background.cor (300 Australian news documents, Lee et al. 2005)",
        "licence": "research corpus redistributed in gensim's wheel (gensim: LGPL-2.1)",
    },
    "polarity": {
        "origin": "gensim test_data pang_lee_polarity.cor (200 sentences of Pang & Lee 2005 sentence polarity v1.0)",
        "licence": "free for research (Pang & Lee), redistributed in gensim's wheel (gensim: LGPL-2.1)",
    },
    "newsgroups": {
        "origin": "gensim test_data mini_newsgroup (200 posts of 20 Newsgroups: alt.atheism, sci.space; headers "
        "removed)",
        "licence": "20 Newsgroups (Lang 1995), public research data, redistributed in gensim's wheel",
    },
    "wikipedia": {
        "origin": "gensim test_data enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2 (about 100 "
        "English Wikipedia articles, markup removed with gensim's filter_wiki)",
        "licence": "CC BY-SA 3.0 (Wikipedia contributors), redistributed in gensim's wheel",
    },
    "wordsim353": {
        "origin": "gensim test_data wordsim353.tsv (Finkelstein et al. 2002)",
        "licence": "free for research, redistributed in gensim's wheel",
    },
    "simlex999": {
        "origin": "gensim test_data simlex999.txt (Hill, Reichart & Korhonen 2015)",
        "licence": "free for research, redistributed in gensim's wheel",
    },
}


# The package each origin's files come with: its version is recorded beside the data (provenance).
_PACKAGE_OF = {"stdlib": "python", "numpy": "numpy", "torch": "torch", "transformers": "transformers"}


def origin_record(key: str) -> dict[str, str]:
    """``ORIGINS[key]`` plus the package (and version) whose installed files the source was read from.

    A harvest reads installed packages, so another version can give other data: the manifest keeps
    the version to tell two runs apart (issue 21). Every gensim test corpus comes with gensim.

    >>> origin_record("stdlib")["package"].startswith("python ")
    True
    """
    package = _PACKAGE_OF.get(key, "gensim")
    version = _library_version("stdlib" if package == "python" else package)
    return {**ORIGINS[key], "package": f"{package} {version}"}


def default_cache_dir() -> Path:
    """``<repo>/data/cache`` in a checkout (git-ignored), else ``~/.cache/minif2/data``."""
    repo = repo_root()
    if (repo / "pyproject.toml").is_file():
        return repo / "data" / "cache"
    return Path.home() / ".cache" / "minif2" / "data"


# ----------------------------------------------------------------- docstring -> code


def _library_root(library: str) -> Path:
    if library == "stdlib":
        return Path(sysconfig.get_paths()["stdlib"])
    spec = importlib.util.find_spec(library)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"library '{library}' is not installed; drop it from code_libraries in your unify config"
        )
    return Path(list(spec.submodule_search_locations)[0])


def _library_version(library: str) -> str:
    return platform.python_version() if library == "stdlib" else importlib.metadata.version(library)


def library_files(library: str) -> list[Path]:
    """Sorted ``.py`` files of a library, without test suites, vendored code and GUI demos."""
    root = _library_root(library)
    return sorted(p for p in root.rglob("*.py") if not (_SKIP_DIRS & set(p.relative_to(root).parts[:-1])))


_SECTION = re.compile(
    r"\s(Args|Arguments|Parameters|Returns|Raises|Yields|Examples?|Note)\s*:?\s*(-{3,}|\s[a-z_]+\s*[(:]|$)"
)


def _summary(docstring: str) -> str:
    """The docstring's first paragraph on one line, cut before an ``Args:``-style section.

    >>> _summary("Add two numbers.\\n    Args:\\n        a (int): first")
    'Add two numbers.'
    """
    text = " ".join(docstring.strip().split("\n\n")[0].split())
    match = _SECTION.search(text)
    return text[: match.start()].strip() if match else text


def pairs_from_source(
    source: str, module: str, library: str, min_words: int = 4, max_code_chars: int = 2000
) -> tuple[list[dict[str, Any]], Counter]:
    """Public functions/methods with a docstring in one file -> ``{query, code, module, library, line}``.

    ``query`` is the docstring's first paragraph; ``code`` is the function without its
    docstring, dedented. Returns the pairs and a Counter of skip reasons.
    """
    skipped: Counter = Counter()
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        skipped["file does not parse"] += 1
        return [], skipped
    lines = source.splitlines()
    pairs = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or node.name.startswith("_"):
            continue
        doc = ast.get_docstring(node)
        if not doc:
            continue
        query, first = _summary(doc), node.body[0]
        if len(query.split()) < min_words:
            skipped["docstring summary under min_words"] += 1
            continue
        if first.lineno == node.lineno or len(node.body) < 2:
            skipped["no code besides the docstring"] += 1
            continue
        keep = lines[node.lineno - 1 : first.lineno - 1] + lines[first.end_lineno : node.end_lineno]  # type: ignore[misc]
        code = textwrap.dedent("\n".join(keep)).strip()
        if len(code) > max_code_chars:
            skipped["code over max_code_chars"] += 1
            continue
        pairs.append({"query": query, "code": code, "module": module, "library": library, "line": node.lineno})
    return pairs, skipped


def _module_name(path: Path, root: Path, library: str) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts if library == "stdlib" else [root.name, *parts]) or root.name


def harvest_code_pairs(
    libraries: tuple[str, ...] = CODE_LIBRARIES,
    cache_dir: str | Path | None = None,
    max_files_per_library: int | None = None,
    seed: int = 0,
    max_code_chars: int = 2000,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Harvest docstring -> code pairs (about 21k with all files, ~30 s), cached on disk.

    ``max_files_per_library`` keeps a seeded random subset of each library's files (the
    tiny profile: seconds). The cache key covers library versions and every argument.
    Returns ``(pairs, manifest)``; the manifest lists origins, licences, versions and skips.
    """
    versions = {lib: _library_version(lib) for lib in libraries}
    key_src = json.dumps([HARVEST_VERSION, versions, max_files_per_library, seed, max_code_chars], sort_keys=True)
    key = hashlib.blake2b(key_src.encode(), digest_size=6).hexdigest()
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    data_path, manifest_path = cache / f"code_pairs-{key}.jsonl", cache / f"code_pairs-{key}.manifest.json"
    if data_path.is_file() and manifest_path.is_file():
        pairs = [json.loads(line) for line in data_path.read_text(encoding="utf-8").splitlines()]
        return pairs, json.loads(manifest_path.read_text())
    pairs, skipped, files_read = [], Counter(), {}
    for library in libraries:
        root, files = _library_root(library), library_files(library)
        if max_files_per_library is not None and len(files) > max_files_per_library:
            files = sorted(random.Random(f"{seed}-{library}").sample(files, max_files_per_library))
        files_read[library] = len(files)
        for path in tqdm(files, desc=f"harvest {library}", leave=False):
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                skipped["file not readable as UTF-8"] += 1
                continue
            found, why = pairs_from_source(
                text, _module_name(path, root, library), library, max_code_chars=max_code_chars
            )
            pairs += found
            skipped.update(why)
    manifest = {
        "source": "code",
        "harvest_version": HARVEST_VERSION,
        "versions": versions,
        "files_read": files_read,
        "pairs": len(pairs),
        "pairs_per_library": dict(Counter(p["library"] for p in pairs)),
        "skipped": dict(skipped),
        "origins": {lib: origin_record(lib) for lib in libraries},
        "max_files_per_library": max_files_per_library,
        "seed": seed,
    }
    cache.mkdir(parents=True, exist_ok=True)
    data_path.write_text("".join(json.dumps(p) + "\n" for p in pairs), encoding="utf-8")
    manifest_path.write_text(json.dumps(manifest, indent=2))
    return pairs, manifest


# ----------------------------------------------------------------- gensim's test corpora


def gensim_file(name: str) -> Path:
    """Path of a file in gensim's bundled ``test/test_data`` folder."""

    path = Path(datapath(name))
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: not in this gensim wheel; reinstall gensim>=4.3 or drop the source from your config"
        )
    return path


def _lines(name: str) -> list[str]:
    return [line.strip() for line in gensim_file(name).read_text(encoding="latin-1").splitlines() if line.strip()]


def read_lee_sts() -> list[dict[str, Any]]:
    """The 50 Lee documents as 1225 pairs ``{sentence1, sentence2, score}``; score = mean human
    similarity in [0, 1] (upper triangle of ``similarities0-1.txt``)."""
    docs = _lines("lee.cor")
    matrix = [[float(x) for x in line.split()] for line in _lines("similarities0-1.txt")]
    n = len(docs)
    if len(matrix) != n or any(len(row) != n for row in matrix):
        raise ValueError(f"{gensim_file('similarities0-1.txt')}: expected a {n}x{n} matrix for {n} documents")
    return [
        {"sentence1": docs[i], "sentence2": docs[j], "score": matrix[i][j]} for i in range(n) for j in range(i + 1, n)
    ]


def read_lee_background() -> list[dict[str, str]]:
    """300 news documents split into ``{lead, body}``: the first sentence and the rest."""
    out = []
    for doc in _lines("lee_background.cor"):
        parts = re.split(r"(?<=[.!?])\s+(?=[A-Z\"'])", doc, maxsplit=1)
        if len(parts) == 2 and len(parts[0].split()) >= 5 and len(parts[1].split()) >= 10:
            out.append({"lead": parts[0], "body": parts[1]})
    return out


def read_polarity() -> list[dict[str, str]]:
    """200 movie-review sentences ``{text, label}`` with label ``positive`` | ``negative``."""
    out = []
    for line in _lines("pang_lee_polarity.cor"):
        tag, _, text = line.partition(" ")
        out.append({"text": text.strip(), "label": {"__label__pos": "positive", "__label__neg": "negative"}[tag]})
    return out


class _Bunch(dict):
    """Stand-in for sklearn's Bunch when reading gensim's pickled newsgroups sample."""


_PICKLE_ALLOWED = {
    ("copy_reg", "_reconstructor"): copyreg._reconstructor,
    ("sklearn.datasets.base", "Bunch"): _Bunch,
    ("__builtin__", "dict"): dict,
    ("__builtin__", "object"): object,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Loads only plain containers and numpy arrays: never runs code from the file."""

    def find_class(self, module: str, name: str) -> Any:

        allowed = {
            **_PICKLE_ALLOWED,
            ("numpy.core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype,
        }
        if (module, name) not in allowed:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from gensim's mini_newsgroup")
        return allowed[(module, name)]


_HEADER = re.compile(r"^[A-Za-z][\w.-]*:\s")  # "Newsgroups: alt.atheism", "X-Newsreader: ..."


def _strip_headers(lines: list[str]) -> list[str]:
    """Drop the leading header block: header lines, their indented continuations, and blank
    lines that are followed by more headers (some posts split their headers)."""
    i = 0
    while i < len(lines):
        line = lines[i]
        if _HEADER.match(line) or (i > 0 and line[:1] in (" ", "\t") and line.strip() and lines[i - 1].strip()):
            i += 1
            continue
        j = i
        while j < len(lines) and not lines[j].strip():
            j += 1
        if j > i and j < len(lines) and _HEADER.match(lines[j]):
            i = j
            continue
        return lines[j:]
    return []


def read_newsgroups(max_chars: int = 2000) -> list[dict[str, str]]:
    """200 posts ``{text, label, subject}``: the body only, capped; posts left empty are dropped.

    Removed, as ``sklearn.datasets.fetch_20newsgroups(remove=("headers", "footers", "quotes"))`` does:
    the headers (which name the group), the signature, and quoted lines with their "In article <id>,
    someone writes:" attributions. Left in, those message ids and addresses filled most of a 64-token
    window and clustering measured them, not the topic (issue 17).
    """
    raw = zlib.decompress(gensim_file("mini_newsgroup").read_bytes())
    bunch = _RestrictedUnpickler(io.BytesIO(raw), encoding="latin-1").load()
    out = []
    for text, target in zip(bunch["data"], bunch["target"], strict=True):
        lines = _strip_headers(text.splitlines())
        subject = next((h[len("Subject:") :].strip() for h in text.splitlines() if h.startswith("Subject:")), "")
        content = strip_newsgroup_footer(strip_newsgroup_quoting("\n".join(lines)))
        body = " ".join(content.split())[:max_chars]
        if body:
            out.append({"text": body, "label": bunch["target_names"][int(target)], "subject": subject})
    return out


def read_word_similarity(name: str = "wordsim353") -> list[dict[str, Any]]:
    """Word pairs ``{sentence1, sentence2, score}`` with mean human ratings on a 0-10 scale."""
    filename = {"wordsim353": "wordsim353.tsv", "simlex999": "simlex999.txt"}[name]
    rows = []
    for line in _lines(filename):
        if line.startswith("#"):
            continue
        a, b, score = line.split("\t")[:3]
        rows.append({"sentence1": a, "sentence2": b, "score": float(score)})
    return rows
