"""Where a training step runs: one process (CPU/GPU; full FT, LoRA, QLoRA) or DeepSpeed ZeRO-2.

The trainer (``training/trainer.py``) has ONE code path for the sampler and the loss; a backend only
answers: which rank am I, how do I run the forward, how do I turn a loss into an optimiser
step (clipping, accumulation, scheduler), and how do I save / restore optimiser state.

- :class:`SingleBackend`: plain PyTorch, bf16 autocast on GPUs that support it.
- :class:`DeepSpeedBackend`: ``deepspeed.initialize`` with ``configs/deepspeed/zero2.json``
  ("auto" fields filled from the TrainConfig, as transformers' Trainer does); bf16 on GPU,
  fp32 on CPU (``DS_ACCELERATOR=cpu``, gloo). Launched by ``scripts/train_deepspeed.sh``.

Memory (notebook 03 explains): ZeRO-2 shards the optimiser state (AdamW: 2 fp32 copies =
8 bytes/param) and the gradients over the ranks; QLoRA stores frozen weights in 4 bits and
trains small adapters; gradient checkpointing keeps one activation per layer and recomputes
the rest in the backward; FlashAttention never materialises the (seq x seq) score matrix.
This module does not know about data or losses.
"""

from __future__ import annotations

import json
import math
import os
import random
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from minif2.assets import final_norm
from minif2.config import CONFIG_ROOT
from minif2.model import Embedder
from minif2.training.losses import mll_exit_layers
from minif2.training.prune import train_top_layers

__all__ = ["DeepSpeedBackend", "SingleBackend", "build_embedder", "build_optimizer", "make_backend"]


def use_bf16(precision: str) -> bool:
    """``auto`` -> bf16 exactly on CUDA devices that support it (docs/recipe.md §1a trains in bf16)."""
    if precision == "auto":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if precision not in ("bf16", "fp32"):
        raise ValueError(f"precision must be 'auto', 'bf16' or 'fp32', got {precision!r}")
    return precision == "bf16"


def build_embedder(cfg: Any, source: str | None = None) -> Embedder:
    """Load ``cfg.model`` (or a checkpoint's ``source``) in the configured mode: full, lora or qlora.

    With ``use_mll`` the model returns ML-Embed's exit layers' embeddings while it trains (``Embedder.exit_layers``).
    """
    if cfg.mode not in ("full", "lora", "qlora"):
        raise ValueError(f"train config field 'mode' must be 'full', 'lora' or 'qlora', got {cfg.mode!r}")
    bf16 = use_bf16(cfg.precision)
    kwargs: dict[str, Any] = {
        "max_length_tokens": cfg.max_length_tokens,
        "attn_implementation": cfg.attn_implementation,
    }
    for name in ("pool_instruction", "instruction_tasks", "bidirectional"):  # None: the model's own setting
        if getattr(cfg, name, None) is not None:
            kwargs[name] = getattr(cfg, name)
    if cfg.mode == "qlora":
        kwargs["load_in_4bit"] = True
        kwargs["torch_dtype"] = "bfloat16" if bf16 else "float32"  # the 4-bit compute dtype
    emb = Embedder.from_pretrained(source or cfg.model, **kwargs)
    if cfg.gradient_checkpointing:
        enable = getattr(emb.backbone, "activation_checkpointing_enable", None)  # transformers >= 5 name
        if enable is not None:
            enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            emb.backbone.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        emb.backbone.config.use_cache = False
    if getattr(cfg, "train_layers", None) is not None:
        if cfg.mode != "full":
            raise ValueError("train_layers freezes layers of a fully fine-tuned model: use mode 'full'")
        train_top_layers(emb.backbone, cfg.train_layers)
    if cfg.mode in ("lora", "qlora"):
        emb.add_lora(
            r=cfg.lora_r, alpha=cfg.lora_alpha, dropout=cfg.lora_dropout, target_modules=cfg.lora_target_modules
        )
    if getattr(cfg, "use_mll", False):  # ML-Embed: forward returns one embedding per exit layer while training
        final_norm(emb.backbone)  # refuse a model without one, before the first step
        emb.exit_layers = mll_exit_layers(emb.backbone.config.num_hidden_layers)
    return emb


def build_optimizer(model: torch.nn.Module, cfg: Any, total_steps: int) -> tuple[torch.optim.Optimizer, Any]:
    """AdamW + linear warm-up and cosine decay, floored at ``cfg.min_lr`` (docs/recipe.md §1a).

    ``cfg.lr_schedule = "constant_with_warmup"`` (F2LLM-v2's ``scheduler_type`` option, docs/recipe.md §1b)
    keeps the learning rate flat after the warm-up instead.
    """

    # transformers' schedules import its trainer utilities, peft and bitsandbytes: only when a run trains
    from transformers import get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup  # noqa: PLC0415

    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("no trainable parameters: check 'mode' and the LoRA target_modules")
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=cfg.weight_decay)
    kind = getattr(cfg, "lr_schedule", "cosine")
    if kind == "constant_with_warmup":
        schedule = get_constant_schedule_with_warmup(optimizer, cfg.warmup_steps).lr_lambdas[0]
    else:
        schedule = get_cosine_schedule_with_warmup(optimizer, cfg.warmup_steps, max(total_steps, 1)).lr_lambdas[0]
    floor = cfg.min_lr / cfg.lr

    def lr_lambda(step: int) -> float:  # a function, not an object: LambdaLR's state_dict stays weights_only-safe
        return max(schedule(step), floor)

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)


class SingleBackend:
    """One process on one device. ``grad_accum`` micro-batches make one optimiser step."""

    rank, world_size, is_main = 0, 1, True

    def __init__(self, embedder: Embedder, cfg: Any, total_steps: int) -> None:
        self.device = torch.device(
            cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        )
        if cfg.mode != "qlora":  # bitsandbytes already placed the 4-bit weights
            embedder.to(self.device)
        self.model = embedder
        self.optimizer, self.scheduler = build_optimizer(embedder, cfg, total_steps)
        self.bf16 = use_bf16(cfg.precision)
        self.cfg = cfg
        self.engine = None

    def autocast(self) -> Any:
        return torch.autocast(self.device.type, dtype=torch.bfloat16) if self.bf16 else nullcontext()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        with self.autocast():
            return self.model(input_ids.to(self.device), attention_mask.to(self.device))

    def backward(self, loss: torch.Tensor, boundary: bool) -> float | None:
        """Accumulate ``loss``; at a boundary clip, step AdamW and the schedule. Returns the grad norm then."""
        (loss / self.cfg.grad_accum).backward()
        if not boundary:
            return None
        params = [p for p in self.model.parameters() if p.requires_grad]
        norm = torch.nn.utils.clip_grad_norm_(
            params, self.cfg.max_grad_norm if self.cfg.max_grad_norm > 0 else math.inf
        )
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(norm)

    def lr(self) -> float:
        return float(self.scheduler.get_last_lr()[0])

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, state: dict[str, Any], folder: Path) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])

    def barrier(self) -> None:
        return None

    def all_mean(self, value: float) -> float:
        return value


def deepspeed_config(cfg: Any, world_size: int) -> dict[str, Any]:
    """``configs/deepspeed/zero2.json`` (or ``cfg.deepspeed_config``) with its "auto" fields filled."""
    path = Path(cfg.deepspeed_config) if cfg.deepspeed_config else CONFIG_ROOT / "deepspeed" / "zero2.json"
    ds = json.loads(path.read_text())
    fill = {
        "train_micro_batch_size_per_gpu": cfg.batch_size,
        "gradient_accumulation_steps": cfg.grad_accum,
        "train_batch_size": cfg.batch_size * cfg.grad_accum * world_size,
        "gradient_clipping": cfg.max_grad_norm,
    }
    for key, value in fill.items():
        if ds.get(key, "auto") == "auto":
            ds[key] = value
    bf16 = use_bf16(cfg.precision)
    ds.setdefault("bf16", {})["enabled"] = bf16
    ds.setdefault("zero_optimization", {}).setdefault("stage", 2)
    ds["zero_allow_untested_optimizer"] = True  # torch's AdamW as the client optimiser
    return ds


class DeepSpeedBackend(SingleBackend):
    """DeepSpeed ZeRO-2 data parallelism; every rank runs this same code (torchrun / deepspeed launcher)."""

    def __init__(self, embedder: Embedder, cfg: Any, total_steps: int) -> None:

        on_gpu = torch.cuda.is_available() and os.environ.get("DS_ACCELERATOR", "") != "cpu"
        import deepspeed  # noqa: PLC0415 - optional (installed apart by scripts/bootstrap.sh), slow to import

        deepspeed.init_distributed(dist_backend="nccl" if on_gpu else "gloo")
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        self.is_main = self.rank == 0
        if on_gpu:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        self.device = torch.device("cuda", torch.cuda.current_device()) if on_gpu else torch.device("cpu")
        embedder.to(self.device)
        optimizer, scheduler = build_optimizer(embedder, cfg, total_steps)
        self.engine, self.optimizer, _, self.scheduler = deepspeed.initialize(
            model=embedder, optimizer=optimizer, lr_scheduler=scheduler, config=deepspeed_config(cfg, self.world_size)
        )
        self.model, self.cfg, self.bf16 = embedder, cfg, False  # the engine casts to bf16 itself

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.engine(input_ids.to(self.device), attention_mask.to(self.device))

    def backward(self, loss: torch.Tensor, boundary: bool) -> float | None:
        self.engine.backward(loss)  # scales by 1/grad_accum itself
        self.engine.step()  # steps optimiser + schedule only at the accumulation boundary
        if not boundary:
            return None
        norm = self.engine.get_global_grad_norm()
        return float(norm) if norm is not None else float("nan")

    def state_dict(self) -> dict[str, Any]:
        return {}  # the engine writes optimiser + scheduler into <checkpoint>/deepspeed

    def load_state_dict(self, state: dict[str, Any], folder: Path) -> None:
        self.engine.load_checkpoint(str(folder / "deepspeed"), tag="engine", load_module_strict=False)

    def barrier(self) -> None:

        dist.barrier()

    def all_mean(self, value: float) -> float:

        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return float(t.item()) / self.world_size


def make_backend(embedder: Embedder, cfg: Any, total_steps: int) -> SingleBackend:
    """``cfg.backend``: ``single`` or ``deepspeed``."""
    if cfg.backend == "single":
        return SingleBackend(embedder, cfg, total_steps)
    if cfg.backend == "deepspeed":
        return DeepSpeedBackend(embedder, cfg, total_steps)
    raise ValueError(f"train config field 'backend' must be 'single' or 'deepspeed', got {cfg.backend!r}")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def launcher_world() -> tuple[int, int]:
    """(rank, world size) from the launcher's environment, before any process group exists."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
