"""minif2: from a foundation LLM to an embedding model, the F2LLM recipe in small.

One subpackage per step of the recipe (and the notebook that teaches it):

- ``minif2.data``        one sample shape for every task (01)
- ``minif2.mining``      margin-based hard negatives (02)
- ``minif2.training``    contrastive training: losses, sampler, trainer (03)
- ``minif2.evaluation``  MTEB scoring (04)
- ``minif2.analysis``    Procrustes instruction shift (05)
- ``minif2.planning``    before renting a GPU: model shapes, memory per GPU, ``train --dry-run`` (03)

Shared by every step: ``model`` (the Embedder, 00), ``assets`` (offline models, 00), ``schema``,
``config``, ``instructions``, ``attention``, ``pooling``; ``cli`` and ``course`` orchestrate. The facts and their
sources: ``docs/recipe.md``.
"""

import logging

# bitsandbytes tries to fetch optional 4-bit CPU kernels from the Hub when it is imported and logs two
# warnings when it cannot (always, offline); it falls back to its own kernels, so there is nothing to do.
for _name in ("bitsandbytes.backends.cpu.ops", "kernels._internals.hf_hub"):
    logging.getLogger(_name).setLevel(logging.ERROR)

from minif2.assets import AssetError, list_assets, resolve_model  # noqa: E402
from minif2.model import Embedder, EmbedderConfig, format_query  # noqa: E402

__version__ = "0.1.0"
__all__ = ["AssetError", "Embedder", "EmbedderConfig", "format_query", "list_assets", "resolve_model"]
