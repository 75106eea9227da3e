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

# Without a GPU, DeepSpeed (imported by transformers and peft when installed) logs "Setting accelerator to CPU"
# on first use; naming the CPU accelerator, as scripts/train_deepspeed.sh does, says the same without the warning.
import os  # noqa: E402

import torch  # noqa: E402

if not torch.cuda.is_available():
    os.environ.setdefault("DS_ACCELERATOR", "cpu")

# transformers draws a "Loading weights" bar for every model it loads and a "Writing model shards" bar for
# every save: for the kit's small models, a second each and dozens per notebook. The kit turns them off;
# transformers.utils.logging.enable_progress_bar() turns them on again. The kit's own bars (training,
# encoding, mteb tasks, harvesting) are unaffected.
from transformers.utils import logging as _transformers_logging  # noqa: E402

_transformers_logging.disable_progress_bar()

from minif2.assets import AssetError, list_assets, resolve_model  # noqa: E402
from minif2.model import Embedder, EmbedderConfig, format_query  # noqa: E402

__version__ = "0.1.0"
__all__ = ["AssetError", "Embedder", "EmbedderConfig", "format_query", "list_assets", "resolve_model"]
