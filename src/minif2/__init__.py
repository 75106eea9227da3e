"""minif2: from a foundation LLM to an embedding model, the F2LLM recipe in small.

Modules, one per step of the recipe (and the notebook that teaches it):

- ``assets``   offline model registry (00)        - ``model``    the Embedder (00)
- ``unify``    one sample shape for every task (01) - ``mining``   margin-based hard negatives (02)
- ``losses``, ``sampler``, ``trainer``  contrastive training (03)
- ``evaluation``  MTEB scoring (04)               - ``analysis`` Procrustes instruction shift (05)
"""

from minif2.assets import AssetError, list_assets, resolve_model
from minif2.model import Embedder, EmbedderConfig, format_query

__version__ = "0.1.0"
__all__ = ["AssetError", "Embedder", "EmbedderConfig", "format_query", "list_assets", "resolve_model"]
