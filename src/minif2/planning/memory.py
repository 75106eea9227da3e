"""How much memory a training profile needs per GPU, from the model's config (``minif2 plan``; issue 16).

Four parts, per process (= per GPU), in bytes:

- **weights**: full / LoRA keep the base in fp32 here (the single backend loads float32 and
  autocasts to bf16); DeepSpeed keeps bf16 module weights plus an fp32 master copy sharded over
  the ranks (ZeRO stage >= 1); QLoRA stores every linear layer in nf4 with double quantisation
  (4 bits + 1 byte per 64-block absmax + fp32 per 256 blocks; QLoRA, arXiv:2305.14314 §2) and
  the embedding and norms in fp32 (peft's ``prepare_model_for_kbit_training`` upcasts them).
  Without gradient checkpointing, autocast's bf16 copies of the linear weights live until the
  backward, once per forward call (the trainer runs two: queries, documents).
- **gradients**: one per trainable parameter (fp32; bf16 + an fp32 partition under DeepSpeed
  bf16), sharded over the ranks from ZeRO stage 2 (ZeRO, arXiv:1910.02054 §5).
- **optimiser**: AdamW's two fp32 moments, 8 bytes per trainable parameter, sharded from stage 1.
- **activations**: one micro-batch embeds ``batch x (1 query + 1 positive + k negatives)`` texts
  of up to ``max_length_tokens`` (both forwards stay alive until the backward). Counted per token
  and layer from the saved tensors of a Qwen3/Llama block under SDPA/FlashAttention (no
  seq x seq matrix); with gradient checkpointing only each layer's input is kept, plus one
  layer recomputed in the backward. AdamW's temporaries (``step``) exist only when the
  activations are gone, so the peak takes the larger of the two.

DeepSpeed's communication buckets are added as the DeepSpeed docs' rule of thumb
(``overlap_comm``: 4.5 x bucket size x 2 copies, capped by the model size). The formulas are
checked against measured peak memory on the CPU (``tests/test_memory.py``); a GPU adds the CUDA
context and allocator fragmentation (``reserve`` below). This module does not train.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minif2.config import CONFIG_ROOT, MINING
from minif2.planning.shapes import shape_config

__all__ = [
    "GIB",
    "MemoryPlan",
    "ModelShape",
    "PlanInputs",
    "plan",
    "plan_for_config",
    "plan_table",
    "print_table",
    "step_flops",
]

GIB = 1024**3
NF4_BYTES = 0.5 + 1 / 64 + 4 / (64 * 256)  # nf4 + double-quantised absmax (blocksize 64, 256 blocks per fp32 scale)
CUDA_CONTEXT_GIB = 0.5  # CUDA context + cuBLAS workspace (typical; not measured here)


@dataclass(frozen=True)
class ModelShape:
    """The sizes that memory depends on, read from a transformers config (Qwen3 / Llama family)."""

    vocab: int
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int

    @classmethod
    def from_config(cls, config: Any) -> ModelShape:
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        return cls(
            config.vocab_size,
            config.hidden_size,
            config.num_hidden_layers,
            config.num_attention_heads,
            getattr(config, "num_key_value_heads", None) or config.num_attention_heads,
            head_dim,
            config.intermediate_size,
        )

    def linears(self) -> list[tuple[int, int]]:
        """(in, out) of one layer's linear maps: q, k, v, o, gate, up, down."""
        h, q, kv, i = self.hidden, self.heads * self.head_dim, self.kv_heads * self.head_dim, self.intermediate
        return [(h, q), (h, kv), (h, kv), (q, h), (h, i), (h, i), (i, h)]

    @property
    def linear_params(self) -> int:
        return self.layers * sum(a * b for a, b in self.linears())

    @property
    def embedding_params(self) -> int:
        return self.vocab * self.hidden

    @property
    def norm_params(self) -> int:
        return self.layers * (2 * self.hidden + 2 * self.head_dim) + self.hidden  # 2 RMSNorms + q/k norms, final

    @property
    def params(self) -> int:
        """Parameters of the backbone ``AutoModel`` loads (no LM head: the Embedder pools hidden states)."""
        return self.embedding_params + self.linear_params + self.norm_params

    def lora_params(self, r: int) -> int:
        """LoRA A (r x in) + B (out x r) on every linear map ("all-linear")."""
        return self.layers * sum(r * (a + b) for a, b in self.linears())

    def saved_per_token_layer(self, bytes_act: int, bf16: bool, lora_dropout: bool, flash: bool = False) -> float:
        """Bytes one token leaves saved for the backward in one decoder layer (see the module docstring).

        Attention: residual, norm's normalised and output (3h); q: projection, q_norm's normalised,
        roped (3 x heads*d); k: 2 x kv*d; k and v repeated to all heads for SDPA with a padding mask
        (2 x heads*d); attention output and its reshaped copy (2 x heads*d). MLP: 3h for the norm,
        gate, silu, up and their product (4i). In bf16 each RMSNorm also keeps an fp32 copy of its
        input and of its normalised value. LoRA dropout keeps its output and a mask per adapted input.
        """
        h, q, kv, i = self.hidden, self.heads * self.head_dim, self.kv_heads * self.head_dim, self.intermediate
        elements = 6 * h + 7 * q + 2 * kv + 4 * i - (2 * q - 2 * kv if flash else 0)
        total = elements * bytes_act
        if bf16:
            total += 4 * (2 * h + q + kv) * 2  # fp32 input + normalised copy in 2 layer norms and q/k norms
        if lora_dropout:
            total += (5 * h + q + i) * (bytes_act + 1)  # q,k,v,gate,up see h; o sees q; down sees i
        return total


@dataclass(frozen=True)
class PlanInputs:
    """What the plan depends on (the TrainConfig fields, plus the number of GPUs)."""

    mode: str = "full"  # full | lora | qlora
    precision: str = "bf16"  # bf16 | fp32 (activations, DeepSpeed's module weights)
    backend: str = "single"  # single | deepspeed
    zero_stage: int = 2
    world_size: int = 1
    batch_size: int = 16
    max_length_tokens: int = 1024
    num_negatives: int = 7
    gradient_checkpointing: bool = True
    lora_r: int = 16
    lora_dropout: float = 0.05
    bucket_elements: int = 200_000_000  # configs/deepspeed/zero2.json reduce/allgather bucket
    overlap_comm: bool = True
    device: str = "cuda"  # cuda: AdamW's foreach path (one temporary per trainable value); cpu: per tensor
    flash_attention: bool = False  # FlashAttention 2 takes grouped k/v as they are (SDPA with a mask repeats them)


@dataclass(frozen=True)
class MemoryPlan:
    """Bytes per GPU, by part, and the peak (no CUDA context: add ``CUDA_CONTEXT_GIB`` on a GPU).

    The activations live from the forward to the backward, AdamW's temporaries (``step``) only
    during ``optimizer.step()``, so the peak counts the larger of the two, on top of the rest.
    """

    weights: float
    gradients: float
    optimizer: float
    activations: float
    step: float
    buffers: float
    params: int
    trainable: int
    tokens: int

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer + self.buffers + max(self.activations, self.step)

    def gib(self) -> dict[str, float]:
        parts = ("weights", "gradients", "optimizer", "activations", "step", "buffers", "total")
        return {name: round(getattr(self, name) / GIB, 2) for name in parts}


def _weights(shape: ModelShape, p: PlanInputs, bf16: bool, n_forward: int) -> float:
    world = p.world_size if p.backend == "deepspeed" and p.zero_stage >= 1 else 1
    lora = shape.lora_params(p.lora_r) * 4 if p.mode in ("lora", "qlora") else 0
    if p.mode == "qlora":
        return shape.linear_params * NF4_BYTES + (shape.embedding_params + shape.norm_params) * 4 + lora
    if p.backend == "deepspeed" and p.mode == "full":
        return shape.params * (2 if bf16 else 4) + shape.params * 4 / world  # module + fp32 master partition
    autocast = 0.0
    if bf16:  # autocast's bf16 copies: kept for the backward without checkpointing, one layer at a time with it
        per_layer = sum(a * b for a, b in shape.linears()) * 2
        autocast = per_layer * shape.layers * n_forward if not p.gradient_checkpointing else per_layer
    return shape.params * 4 + lora + autocast


def plan(shape: ModelShape, p: PlanInputs) -> MemoryPlan:
    """The memory plan of one process training ``shape`` as ``p`` says."""
    if p.mode not in ("full", "lora", "qlora"):
        raise ValueError(f"mode must be full, lora or qlora, got {p.mode!r}")
    bf16 = p.precision == "bf16"
    a = 2 if bf16 else 4
    ds = p.backend == "deepspeed"
    trainable = shape.params if p.mode == "full" else shape.lora_params(p.lora_r)
    shard_opt = p.world_size if ds and p.zero_stage >= 1 else 1
    shard_grad = p.world_size if ds and p.zero_stage >= 2 else 1
    weights = _weights(shape, p, bf16, n_forward=2)
    if ds and p.mode == "full" and bf16:
        gradients = trainable * 2 / shard_grad + trainable * 4 / p.world_size  # bf16 grads + fp32 partition
    else:
        gradients = trainable * 4 / shard_grad
    optimizer = trainable * 8 / shard_opt
    if p.device == "cuda":  # torch's foreach AdamW: sqrt(v) for every trainable value at once, fp32
        step = trainable * 4 / shard_opt
    else:  # per tensor: sqrt(v) and its quotient for the largest trainable tensor
        step = 2 * 4 * (max(shape.embedding_params, *(a * b for a, b in shape.linears())) if p.mode == "full" else 0)
    docs, queries = p.batch_size * (1 + p.num_negatives), p.batch_size
    tokens = (docs + queries) * p.max_length_tokens
    per_layer = shape.saved_per_token_layer(a, bf16, p.mode != "full" and p.lora_dropout > 0, p.flash_attention)
    if p.gradient_checkpointing:  # layer inputs kept; one layer (of the larger forward) recomputed at a time,
        # its saved tensors plus the gradients flowing through them (about half as much again)
        activations = tokens * shape.hidden * a * (shape.layers + 3) + 1.5 * docs * p.max_length_tokens * per_layer
    else:
        activations = tokens * (per_layer * shape.layers + shape.hidden * a * 3)
    buffers = 0.0
    if ds:
        bucket = min(p.bucket_elements, shape.params) * a
        buffers = bucket * 2 * (4.5 if p.overlap_comm else 1.0)
    return MemoryPlan(weights, gradients, optimizer, activations, step, buffers, shape.params, trainable, tokens)


def step_flops(shape: ModelShape, p: PlanInputs) -> float:
    """FLOPs of one micro-step (an estimate: matmuls only, every text at ``max_length_tokens``).

    A linear map costs 2 FLOPs per weight and token forward, as much again for the input gradient
    and again for the weight gradient (full fine-tuning only); gradient checkpointing adds a
    second forward. Causal attention costs 2 x length x heads x head_dim per token and layer
    forward (QK and AV, half masked), twice that backward. Embedding lookups cost nothing.
    """
    linear_passes = 2 + (p.mode == "full") + p.gradient_checkpointing
    attention_passes = 3 + p.gradient_checkpointing
    attention = shape.layers * 2 * p.max_length_tokens * shape.heads * shape.head_dim
    tokens = p.batch_size * (2 + p.num_negatives) * p.max_length_tokens
    return float(tokens * (2 * shape.linear_params * linear_passes + attention * attention_passes))


def _most_negatives(setting: int | Mapping[str, int]) -> int:
    """The largest per-step negative count of a TrainConfig's ``num_negatives`` (an int or per family).

    >>> _most_negatives(3), _most_negatives({"classification": 1}), _most_negatives({"clustering": 9})
    (3, 7, 9)
    """
    if isinstance(setting, Mapping):  # families it omits keep F2LLM's 7 (training/sampler.NEGATIVES_PER_STEP)
        return max(MINING["negatives_per_step"], *setting.values())
    return int(setting)


def inputs_for_config(cfg: Any, world_size: int = 1, precision: str | None = None) -> PlanInputs:
    """The plan's inputs from a TrainConfig (and its DeepSpeed JSON) on ``world_size`` GPUs."""
    ds_path = Path(cfg.deepspeed_config) if cfg.deepspeed_config else CONFIG_ROOT / "deepspeed" / "zero2.json"
    zero = json.loads(ds_path.read_text()).get("zero_optimization", {})
    return PlanInputs(
        mode=cfg.mode,
        precision=precision or ("fp32" if cfg.precision == "fp32" else "bf16"),
        backend=cfg.backend,
        zero_stage=int(zero.get("stage", 2)),
        world_size=world_size,
        batch_size=cfg.batch_size,
        max_length_tokens=cfg.max_length_tokens,
        num_negatives=_most_negatives(cfg.num_negatives),
        gradient_checkpointing=cfg.gradient_checkpointing,
        lora_r=cfg.lora_r,
        lora_dropout=cfg.lora_dropout,
        bucket_elements=int(zero.get("reduce_bucket_size", 200_000_000)),
        overlap_comm=bool(zero.get("overlap_comm", False)),
        flash_attention=cfg.attn_implementation == "flash_attention_2",
    )


def plan_for_config(
    cfg: Any, world_size: int = 1, model_config: Any = None, precision: str | None = None
) -> MemoryPlan:
    """Plan a TrainConfig on ``world_size`` GPUs; the model config from ``configs/models`` unless given."""
    config = model_config if model_config is not None else shape_config(cfg.model)
    return plan(ModelShape.from_config(config), inputs_for_config(cfg, world_size, precision))


def plan_table(
    runs: list[tuple[str, Any]],
    models: tuple[str, ...] = ("Qwen/Qwen3-0.6B", "Qwen/Qwen3-1.7B", "Qwen/Qwen3-4B"),
    gpus: tuple[int, ...] = (1, 8, 32),
    peak_tflops: float = 989.0,
    utilisation: float = 0.4,
) -> list[dict[str, Any]]:
    """One row per (profile, model, GPUs) for ``runs`` = [(profile, {model: TrainConfig})]: GiB per GPU.

    A single-process profile (small-gpu) gets one row per model; DeepSpeed profiles one per GPU count.
    ``est_s_per_step`` is an ESTIMATE: :func:`step_flops` at ``utilisation`` x ``peak_tflops``
    (default: 40 % of an H100/H200's 989 dense bf16 TFLOPS), one micro-step, texts at full length.
    """
    rows = []
    for profile, configs in runs:
        for model in models:
            run = configs[model]
            for n in gpus if run.backend == "deepspeed" else (1,):
                memory = plan_for_config(run, n)
                flops = step_flops(ModelShape.from_config(shape_config(run.model)), inputs_for_config(run, n))
                rows.append(
                    {
                        "profile": profile,
                        "model": model,
                        "gpus": n,
                        "mode": run.mode,
                        "batch": run.batch_size,
                        "length": run.max_length_tokens,
                        "checkpointing": run.gradient_checkpointing,
                        **memory.gib(),
                        "with_context": round(memory.total / GIB + CUDA_CONTEXT_GIB, 1),
                        "fits": memory.total / GIB + CUDA_CONTEXT_GIB <= ASSUMED_GIB.get(profile, float("inf")),
                        "tflop_per_step": round(flops / 1e12, 1),
                        "est_s_per_step": round(flops / (peak_tflops * 1e12 * utilisation), 2),
                    }
                )
    return rows


ASSUMED = {"small-gpu": "one 16-24 GB GPU (configs/small-gpu/train.yaml)", "paper": "80 GB GPUs, 32 of them (F2LLM)"}
ASSUMED_GIB = {"small-gpu": 24.0, "paper": 80.0}  # the largest GPU each profile is written for


def print_table(rows: list[dict[str, Any]]) -> None:
    """The plan rows as a fixed-width table, then what each profile assumes and what the columns mean."""
    columns = [("profile", "<10"), ("model", "<16"), ("gpus", ">5"), ("mode", ">6"), ("batch", ">6"), ("len", ">5")]
    columns += [(name, ">8") for name in ("weights", "grads", "optim", "activ", "step", "buffers", "total", "+ctx")]
    columns += [("fits", ">5"), ("TFLOP", ">7"), ("~s/step", ">8")]
    print("".join(f"{name:{fmt}}" for name, fmt in columns))
    for r in rows:
        values = [r["profile"], r["model"].removeprefix("Qwen/"), r["gpus"], r["mode"], r["batch"], r["length"]]
        values += [f"{r[k]:.2f}" for k in ("weights", "gradients", "optimizer", "activations", "step", "buffers")]
        values += [f"{r['total']:.2f}", f"{r['with_context']:.1f}", "yes" if r["fits"] else "NO"]
        values += [f"{r['tflop_per_step']:.0f}", f"{r['est_s_per_step']:.2f}"]
        print("".join(f"{value:{fmt}}" for value, (_, fmt) in zip(values, columns)))
    print(
        "GiB per GPU; total = weights + grads + optim + buffers + max(activ, step); +ctx: ~0.5 GiB CUDA context.\n"
        "Activations assume every text padded to the full length (worst case: batches pad to their longest text).\n"
        "~s/step is an ESTIMATE from FLOPs at 40% of 989 TFLOPS (H100/H200 bf16); QLoRA adds 4-bit dequantisation."
    )
    for profile in sorted({r["profile"] for r in rows}):
        assumed = ASSUMED.get(profile, f"no GPU in particular (configs/{profile}/train.yaml)")
        limit = f"+ctx <= {ASSUMED_GIB[profile]} GiB" if profile in ASSUMED_GIB else "no limit assumed"
        print(f"{profile}: the profile assumes {assumed}; fits: {limit}")
