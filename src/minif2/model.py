"""The Embedder: any HF backbone + pooling + L2 normalisation, with query instructions.

F2LLM / Qwen3-Embedding (docs/recipe.md §1a): a decoder, EOS appended after truncation,
embedding = hidden state of the last real token (the EOS), L2-normalised; queries
carry ``Instruct: {instruction}\\nQuery: {text}``, documents nothing.
QZhou (docs/recipe.md §2): mean pooling, optionally with the causal mask turned bidirectional.
MiniLM: an encoder with mean pooling.

A saved Embedder is a folder that ``transformers.AutoModel`` and
``sentence_transformers.SentenceTransformer`` both load, giving the same vectors:
the EOS is appended by the tokenizer's post-processor (so every loader gets it),
and pooling, normalisation and prompts are written as sentence-transformers modules.
Bidirectional attention is recorded in the folder's ``minif2_embedder.json``, so
:meth:`Embedder.from_pretrained` restores it; those outside loaders run the backbone causal,
as its config says (:meth:`Embedder.save` warns; the README says what to do).

This module does not train; see ``training/trainer.py``. Taught in ``notebooks/00_overview.ipynb``
and used by every later notebook.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from tokenizers import processors
from torch import nn
from tqdm.auto import tqdm
from transformers import AutoConfig, AutoModel, AutoTokenizer

from minif2.assets import MODEL_ASSETS, AssetError, final_norm, resolve_model
from minif2.attention import FLASH, Attention, bidirectional_mask, choose_attention
from minif2.model_card import write_model_card
from minif2.pooling import Pooling, mark_instructions, pool
from minif2.schema import TASK_TYPES

__all__ = ["DEFAULT_QUERY_TEMPLATE", "Embedder", "EmbedderConfig", "TorchDtype", "format_query", "pool"]

DEFAULT_QUERY_TEMPLATE = "Instruct: {instruction}\nQuery: {text}"
EMBEDDER_FILE = "minif2_embedder.json"
TorchDtype = Literal["float32", "bfloat16", "float16"]  # a torch dtype's name (getattr(torch, name))


@dataclass
class EmbedderConfig:
    """How a backbone becomes an embedder. Defaults follow F2LLM's released code (docs/recipe.md §1a)."""

    model: str = "tiny-qwen3"  # offline asset name, local folder, or hub id (e.g. Qwen/Qwen3-0.6B)
    pooling: Pooling | None = (
        None  # None: the asset's own ("mean" for minilm), else "last" for decoders, "mean" for encoders
    )
    normalize: bool = True  # L2-normalise, so dot product = cosine
    max_length_tokens: int = 1024  # F2LLM: 1023 text tokens + EOS
    append_eos: bool | None = None  # None: True exactly when pooling == "last"
    bidirectional: bool = False  # QZhou: let a decoder attend both ways (encoders already do)
    query_template: str = DEFAULT_QUERY_TEMPLATE  # Qwen3-Embedding style; queries only
    pool_instruction: bool = True  # F2LLM: yes; False: mean pooling skips a query's instruction (GritLM, pooling.py)
    instruction_tasks: list[str] | None = None  # task types whose queries get instructions; None: all (F2LLM)
    padding_side: Literal["right", "left"] = "right"  # F2LLM pads right; pooling is correct for both
    torch_dtype: TorchDtype = "float32"  # "bfloat16" on GPUs that support it
    attn_implementation: Attention | None = None  # auto (FA2 if usable) | sdpa | eager | flash_attention_2 | None
    load_in_4bit: bool = False  # QLoRA: nf4 weights via bitsandbytes
    uses_instructions: bool | None = None  # None: decoders and kit-trained models yes, encoders no (takes_instructions)
    trust_remote_code: bool = False  # run a model folder's own Python code: only the caller may turn it on
    prompts: dict[str, str] = field(default_factory=dict)  # name -> instruction, saved for sentence-transformers

    def __post_init__(self) -> None:
        unknown = sorted(set(self.instruction_tasks or ()) - set(TASK_TYPES))
        if unknown:  # a misspelt type would silently take every instruction away
            raise ValueError(f"instruction_tasks: unknown task type(s) {unknown}; use some of {list(TASK_TYPES)}")


def format_query(text: str, instruction: str | None, template: str = DEFAULT_QUERY_TEMPLATE) -> str:
    """Prefix a query with its task instruction; no instruction leaves the text as it is.

    >>> format_query("what is a tensor", "Given a question, retrieve passages that answer it")
    'Instruct: Given a question, retrieve passages that answer it\\nQuery: what is a tensor'
    """
    return template.format(instruction=instruction, text=text) if instruction else text


def _saved_settings(path: Path) -> dict[str, Any]:
    """A saved Embedder's settings file, if any, without ``trust_remote_code`` (a folder may not enable it)."""
    if not path.is_file():
        return {}
    settings = json.loads(path.read_text())
    if settings.pop("trust_remote_code", False):
        warnings.warn(f"{path}: ignoring trust_remote_code=true (a model folder cannot enable it)", stacklevel=3)
    return settings


def _is_decoder(config: Any) -> bool:
    archs = getattr(config, "architectures", None) or []
    return any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs) or config.model_type in {
        "qwen3",
        "qwen2",
        "llama",
        "mistral",
        "gemma",
        "gemma2",
        "gemma3_text",
        "phi3",
        "gpt2",
    }


def _install_eos_postprocessor(tokenizer: Any) -> None:
    """Make the tokenizer itself append EOS (after any BOS), as Qwen3-Embedding's tokenizer does.

    Doing it in the tokenizer, not in Python, means truncation leaves room for the EOS and
    every loader of the saved folder (transformers, sentence-transformers) gets the same ids.
    """

    eos, eos_id = tokenizer.eos_token, tokenizer.eos_token_id
    if eos is None:
        raise ValueError("pooling='last' needs an EOS token, but the tokenizer has none")
    probe = tokenizer("a")["input_ids"]
    if probe and probe[-1] == eos_id:
        return  # already appends EOS
    bos = (
        tokenizer.bos_token
        if (tokenizer.bos_token_id is not None and probe and probe[0] == tokenizer.bos_token_id)
        else None
    )
    head = f"{bos}:0 " if bos else ""
    special = [(eos, eos_id)] + ([(bos, tokenizer.bos_token_id)] if bos else [])
    tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{head}$A:0 {eos}:0", pair=f"{head}$A:0 {eos}:0 $B:1 {eos}:1", special_tokens=special
    )
    if tokenizer("a")["input_ids"][-1] != eos_id:
        raise RuntimeError(f"could not make {type(tokenizer).__name__} append EOS; pooling='last' would be wrong")


class Embedder(nn.Module):
    """A text encoder: ``forward`` for training (keeps gradients), ``encode`` for inference."""

    def __init__(self, backbone: nn.Module, tokenizer: Any, config: EmbedderConfig, source: str) -> None:
        super().__init__()
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.config = config
        self.source = source  # the resolved folder or hub id the weights came from
        self.head: nn.Linear | None = None  # a Dense layer after pooling (training/head.py), or none
        # training with use_mll only: forward returns (batch, exits, dim), one embedding per exit layer
        # (ML-Embed, training/losses.py::LayerMatryoshka); never saved, and encode() ignores it
        self.exit_layers: list[int] | None = None

    # ----------------------------------------------------------------- loading
    @classmethod
    def from_pretrained(cls, model: str | Path, **overrides: Any) -> Embedder:
        """Load an asset name, a local folder (a saved Embedder keeps its settings) or a hub id.

        A folder's settings never switch on ``trust_remote_code`` (a shared checkpoint with an
        ``auto_map`` would otherwise run its own Python on load); only ``trust_remote_code=True``
        passed here does, and a warning says so.
        """

        name = str(model)
        source = resolve_model(name)
        settings = _saved_settings(Path(source) / EMBEDDER_FILE)
        if overrides.get("trust_remote_code"):
            warnings.warn(
                f"trust_remote_code=True: loading '{name}' may run Python code shipped with the model", stacklevel=2
            )
        settings.update({k: v for k, v in overrides.items() if v is not None})
        settings["model"] = name
        st_config = Path(source) / "sentence_bert_config.json"
        if (
            "max_length_tokens" not in settings and st_config.is_file()
        ):  # a plain sentence-transformers folder keeps its limit (MiniLM: 256)
            settings["max_length_tokens"] = (
                json.loads(st_config.read_text()).get("max_seq_length") or EmbedderConfig.max_length_tokens
            )
        config = EmbedderConfig(**settings)
        try:
            hf_config = AutoConfig.from_pretrained(source, trust_remote_code=config.trust_remote_code)
            tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=config.trust_remote_code)
        except OSError as err:
            raise AssetError(
                f"could not load '{name}': {err}\nOffline? Hub ids need the hub (unset HF_HUB_OFFLINE); "
                f"offline assets are {', '.join(MODEL_ASSETS)}."
            ) from err
        if config.pooling is None:
            asset = MODEL_ASSETS.get(name)
            config.pooling = asset.pooling if asset else ("last" if _is_decoder(hf_config) else "mean")  # type: ignore[assignment]
        max_positions = getattr(hf_config, "max_position_embeddings", None)
        if max_positions and config.max_length_tokens > max_positions:  # BERT-style encoders: 512
            config.max_length_tokens = int(max_positions)
        if config.append_eos is None:
            config.append_eos = config.pooling == "last"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = config.padding_side
        if config.append_eos:
            _install_eos_postprocessor(tokenizer)

        backbone = AutoModel.from_pretrained(source, **_backbone_kwargs(config))
        embedder = cls(backbone, tokenizer, config, source)
        dense = _dense_folder(Path(source))
        if dense is not None:  # a sentence-transformers Dense module after the pooling (training/head.py)
            embedder.head = _load_dense(dense).to(backbone.device)
        return embedder

    # --------------------------------------------------------------- properties
    @property
    def pooling(self) -> Pooling:
        assert self.config.pooling is not None
        return self.config.pooling

    @property
    def takes_instructions(self) -> bool:
        """Whether queries should carry ``Instruct: ...\nQuery: ...``: the one answer the kit uses everywhere.

        ``EmbedderConfig.uses_instructions`` decides when set; otherwise yes for decoders
        (last-token pooling, F2LLM / Qwen3-Embedding style) and for models the kit trained (their
        queries carried instructions), no for plain encoders such as all-MiniLM-L6-v2, which never
        saw one (mteb evaluates them without, and the prefix would swamp short queries).
        """
        if self.config.uses_instructions is not None:
            return self.config.uses_instructions
        return self.pooling == "last" or (Path(str(self.source)) / EMBEDDER_FILE).is_file()

    @property
    def dim(self) -> int:
        return int(self.head.out_features if self.head is not None else self.backbone.config.hidden_size)

    def add_head(self) -> nn.Linear:
        """Put a Dense layer (``dim -> dim``, with bias) after the pooling, initialised to the identity, so the
        model's vectors are unchanged until it is trained (``training/head.py``). Saved as sentence-transformers'
        ``Dense`` module, so the folder loads in sentence-transformers with the same vectors."""
        head = nn.Linear(self.dim, self.dim)
        with torch.no_grad():
            head.weight.copy_(torch.eye(self.dim))
            head.bias.zero_()
        self.head = head.to(self.device)
        return self.head

    @property
    def device(self) -> torch.device:
        return next(self.backbone.parameters()).device

    # ------------------------------------------------------------------ forward
    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Texts -> padded ``input_ids`` / ``attention_mask`` (truncated to ``max_length_tokens``, EOS kept).

        With ``pool_instruction=False`` and mean pooling, instruction tokens get mask value 2 (``pooling.py``).
        """
        batch = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.config.max_length_tokens, return_tensors="pt"
        )
        if not self.config.pool_instruction and self.pooling == "mean":
            template = self.config.query_template
            batch["attention_mask"] = mark_instructions(batch["attention_mask"], texts, template, self.tokenizer)
        return batch

    def pad(self, token_ids: Sequence[Sequence[int]]) -> dict[str, torch.Tensor]:
        """Stored token ids (a pre-tokenized corpus, ``data/pretokenize.py``) -> what :meth:`tokenize` returns."""
        return self.tokenizer.pad({"input_ids": [list(ids) for ids in token_ids]}, padding=True, return_tensors="pt")

    def _attention_inputs(self, attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Position ids that ignore left padding and, if asked, a bidirectional 4-D mask."""
        extra: dict[str, torch.Tensor] = {"attention_mask": attention_mask}
        if getattr(self.backbone.config, "is_encoder_decoder", False) or not _is_decoder(self.backbone.config):
            return extra
        extra["position_ids"] = (attention_mask.long().cumsum(dim=1) - 1).clamp(min=0)
        if self.config.bidirectional:
            if getattr(self.backbone.config, "_attn_implementation", None) == FLASH:
                raise ValueError("bidirectional attention needs sdpa or eager; this backbone runs flash_attention_2")
            dtype = next(self.backbone.parameters()).dtype
            extra["attention_mask"] = bidirectional_mask(
                attention_mask, dtype if dtype.is_floating_point else torch.float32
            )
        return extra

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Token ids -> (batch, dim) embeddings, with gradients (the trainer's entry point)."""
        attend = (attention_mask > 0).to(attention_mask.dtype)  # instruction tokens (2) are attended
        exits = self.exit_layers
        out = self.backbone(
            input_ids=input_ids, output_hidden_states=exits is not None, **self._attention_inputs(attend)
        )
        if exits is None:
            return self._finish(pool(out.last_hidden_state, attention_mask, self.pooling))
        last = len(out.hidden_states) - 1  # hidden_states[0] is the token embeddings; [last] is already normed
        states = [out.hidden_states[k] if k == last else final_norm(self.backbone)(out.hidden_states[k]) for k in exits]
        return torch.stack([self._finish(pool(h, attention_mask, self.pooling)) for h in states], dim=1)

    def _finish(self, pooled: torch.Tensor) -> torch.Tensor:
        """Pooled states -> the embedding: the Dense head if any, then L2 normalisation if configured."""
        emb = pooled.float()
        if self.head is not None:
            emb = self.head(emb)
        return nn.functional.normalize(emb, dim=-1) if self.config.normalize else emb

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """Texts -> (batch, dim) embeddings with gradients."""
        batch = {k: v.to(self.device) for k, v in self.tokenize(texts).items()}
        return self(batch["input_ids"], batch["attention_mask"])

    # ---------------------------------------------------------------- inference
    def format_queries(self, texts: Sequence[str], instruction: str | None) -> list[str]:
        return [format_query(t, instruction, self.config.query_template) for t in texts]

    @torch.inference_mode()
    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = 32,
        instruction: str | None = None,
        show_progress_bar: bool | None = None,
        convert_to_tensor: bool = False,
    ) -> np.ndarray | torch.Tensor:
        """Embed ``texts`` (queries if ``instruction`` is given) -> float32 (n, dim), in input order.

        Texts are batched longest-first so that each batch pads little, and a text repeated in ``texts`` is
        embedded once (mteb's STS tasks pass each pair's two sentences: LeeSTS's 1225 pairs hold 50 documents).
        """
        if isinstance(texts, str):
            raise TypeError("encode() takes a list of texts, not one string")
        position: dict[str, int] = {}
        inverse = [position.setdefault(t, len(position)) for t in self.format_queries(texts, instruction)]
        texts = list(position)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        was_training, exits, self.exit_layers = self.training, self.exit_layers, None  # the full model only
        self.eval()
        chunks: list[torch.Tensor] = []
        show = len(texts) > 4 * batch_size if show_progress_bar is None else show_progress_bar
        try:
            for start in tqdm(range(0, len(texts), batch_size), desc="encode", disable=not show, unit="batch"):
                chunks.append(self.embed([texts[i] for i in order[start : start + batch_size]]).cpu())
        finally:
            self.train(was_training)
            self.exit_layers = exits
        out = torch.cat(chunks) if chunks else torch.empty(0, self.dim)
        out = out[torch.from_numpy(np.argsort(order, kind="stable"))].float()[torch.tensor(inverse, dtype=torch.long)]
        return out if convert_to_tensor else out.numpy()

    # ---------------------------------------------------------------- LoRA
    def add_lora(
        self, r: int = 16, alpha: int = 32, dropout: float = 0.05, target_modules: Sequence[str] | str = "all-linear"
    ) -> None:
        """Wrap the backbone with peft LoRA adapters (QLoRA when loaded with ``load_in_4bit``)."""
        # peft imports bitsandbytes, which is slow and noisy on a CPU: only when LoRA is asked for
        from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training  # noqa: PLC0415

        if self.config.load_in_4bit:
            self.backbone = prepare_model_for_kbit_training(self.backbone, use_gradient_checkpointing=False)
        lora = LoraConfig(
            r=r,
            lora_alpha=alpha,
            lora_dropout=dropout,
            target_modules=target_modules if isinstance(target_modules, str) else list(target_modules),
        )
        self.backbone = get_peft_model(self.backbone, lora)

    def merged_backbone(self) -> nn.Module:
        """The backbone with any LoRA adapters merged in (what gets saved)."""
        if hasattr(self.backbone, "merge_and_unload"):  # a peft model (see add_lora)
            return self.backbone.merge_and_unload()
        return self.backbone

    # ---------------------------------------------------------------- saving
    def save(self, path: str | Path, results: Any = None) -> Path:
        """Write a folder loadable by :meth:`load`, ``AutoModel`` and ``SentenceTransformer``, with a model card.

        The card (``README.md``, ``model_card.py``) says what is known: the settings, the recipe and data
        when a trainer's ``train.yaml`` lies beside the folder, the scores in ``results`` if given.
        """
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if self.config.bidirectional:
            warnings.warn(
                "bidirectional attention is restored by minif2's Embedder.from_pretrained only; transformers and "
                "sentence-transformers run this backbone causal (README: bidirectional models)",
                stacklevel=2,
            )
        backbone = self.merged_backbone()
        if self.config.load_in_4bit:
            backbone = backbone.dequantize()
        backbone.save_pretrained(path, safe_serialization=True)
        self.tokenizer.save_pretrained(path)
        settings = asdict(self.config)
        settings.pop("model")
        settings.pop("trust_remote_code")  # never recorded: only a caller's explicit argument turns it on
        settings["load_in_4bit"] = False
        if settings["attn_implementation"] == FLASH:  # a property of the machine, not of the model: choose again
            settings["attn_implementation"] = "auto"
        (path / EMBEDDER_FILE).write_text(json.dumps(settings, indent=2))
        self._write_sentence_transformers_files(path)
        write_model_card(path, settings, loaded_from=self.config.model, results=results)
        return path

    def _write_sentence_transformers_files(self, path: Path) -> None:
        modules = [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        ]
        if self.head is not None:
            modules.append({"idx": 2, "name": "2", "path": "2_Dense", "type": _DENSE_TYPE})
            _save_dense(self.head, path / "2_Dense")
        if self.config.normalize:
            n = len(modules)
            modules.append(
                {"idx": n, "name": str(n), "path": f"{n}_Normalize", "type": "sentence_transformers.models.Normalize"}
            )
            (path / f"{n}_Normalize").mkdir(exist_ok=True)
        (path / "modules.json").write_text(json.dumps(modules, indent=2))
        (path / "sentence_bert_config.json").write_text(
            json.dumps({"max_seq_length": self.config.max_length_tokens, "do_lower_case": False}, indent=2)
        )
        (path / "1_Pooling").mkdir(exist_ok=True)
        (path / "1_Pooling" / "config.json").write_text(
            json.dumps(
                {
                    "word_embedding_dimension": int(self.backbone.config.hidden_size),
                    "pooling_mode_cls_token": False,
                    "pooling_mode_mean_tokens": self.pooling == "mean",
                    "pooling_mode_max_tokens": False,
                    "pooling_mode_mean_sqrt_len_tokens": False,
                    "pooling_mode_weightedmean_tokens": False,
                    "pooling_mode_lasttoken": self.pooling == "last",
                    "include_prompt": self.config.pool_instruction or self.pooling != "mean",
                },
                indent=2,
            )
        )
        prefix = self.config.query_template.split("{text}")[0]
        prompts = {name: prefix.format(instruction=instr) for name, instr in self.config.prompts.items()}
        (path / "config_sentence_transformers.json").write_text(
            json.dumps(
                {
                    "prompts": prompts,
                    "default_prompt_name": None,
                    "similarity_fn_name": "cosine",
                },
                indent=2,
            )
        )


def _backbone_kwargs(config: EmbedderConfig) -> dict[str, Any]:
    """``AutoModel.from_pretrained`` arguments: dtype, remote code, the attention kernel, 4-bit quantisation."""
    kwargs: dict[str, Any] = {
        "dtype": getattr(torch, config.torch_dtype),
        "trust_remote_code": config.trust_remote_code,
    }
    attention = choose_attention(config.attn_implementation, config.bidirectional)
    if attention:
        kwargs["attn_implementation"] = attention
    if config.load_in_4bit:
        from transformers import BitsAndBytesConfig  # noqa: PLC0415 - loads bitsandbytes: only for 4-bit

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=getattr(torch, config.torch_dtype),
        )
    return kwargs


# ------------------------------------------------------------------ the optional Dense head
_DENSE_TYPE = "sentence_transformers.models.Dense"


def _dense_folder(folder: Path) -> Path | None:
    """The Dense module's folder in a sentence-transformers ``modules.json``, or None."""
    modules = folder / "modules.json"
    if not modules.is_file():
        return None
    for module in json.loads(modules.read_text()):
        if module.get("type", "").endswith("models.Dense"):
            return folder / module["path"]
    return None


def _save_dense(head: nn.Linear, folder: Path) -> None:
    """Write ``head`` as sentence-transformers' Dense module (identity activation), with its own save code."""
    from sentence_transformers.models import Dense  # noqa: PLC0415 - heavy: only a model with a head needs it

    dense = Dense(head.in_features, head.out_features, bias=True, activation_function=nn.Identity())
    dense.linear.load_state_dict(head.state_dict())
    folder.mkdir(parents=True, exist_ok=True)
    dense.save(str(folder))


def _load_dense(folder: Path) -> nn.Linear:
    """A Dense module saved by sentence-transformers (``linear.weight``/``linear.bias``, safetensors) as a Linear.

    Only an identity activation is accepted: the Embedder applies no other.
    """
    from safetensors.torch import load_file  # noqa: PLC0415

    config = json.loads((folder / "config.json").read_text())
    if config.get("activation_function", "torch.nn.modules.linear.Identity") != "torch.nn.modules.linear.Identity":
        raise AssetError(f"{folder / 'config.json'}: only a Dense head with an Identity activation is supported")
    state = load_file(str(folder / "model.safetensors"))
    head = nn.Linear(int(config["in_features"]), int(config["out_features"]), bias=bool(config.get("bias", True)))
    head.load_state_dict({k.removeprefix("linear."): v for k, v in state.items()})
    return head
