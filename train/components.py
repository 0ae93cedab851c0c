"""Builds what the loop trains from the config's ``_target_`` nodes: data, model (DDP-wrapped), objective, optimizer, scheduler."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from train.checkpoint import rng
from train.data import ShardedBatches, fixed_batches
from train.distributed import DistributedContext, data_parallel
from train.errors import TrainConfigError

log = logging.getLogger(__name__)


@dataclass
class Components:
    """Everything the loop steps, plus what a checkpoint saves."""

    model: nn.Module  # what the loop calls: DDP-wrapped when distributed
    module: nn.Module  # the bare model: its state_dict is what is saved
    objective: Any  # objective(model, batch) -> (loss, metrics): cfg.objective
    optimizer: torch.optim.Optimizer
    scheduler: Any | None
    train_batches: ShardedBatches
    eval_batches: list[tuple[torch.Tensor, torch.Tensor]]
    # More checkpointed parts (an EMA of the weights, a grad scaler): name -> object with state_dict().
    extra_state: dict[str, Any] = field(default_factory=dict)

    def release(self) -> None:
        """Drop the model the loop calls (the DDP wrapper): ``train.distributed.teardown`` calls it."""
        self.model = None  # type: ignore[assignment]


def build(node: DictConfig, what: str, **kwargs: Any) -> Any:
    """``instantiate(node)``; a ``_target_`` that cannot be found is reported as a config error."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as exc:
        # A misspelt class or keyword is a config mistake; anything else is a bug worth a traceback.
        if "Error locating target" in str(exc) or isinstance(exc.__cause__, TypeError):
            raise TrainConfigError(f"{what}: {' '.join(str(exc).split())}") from None
        raise


def _call(factory: Any, what: str, argument: Any) -> Any:
    if not callable(factory) or isinstance(factory, (torch.optim.Optimizer, nn.Module)):
        raise TrainConfigError(f"{what}: needs `_partial_: true` (the loop supplies its first argument)")
    try:
        return factory(argument)
    except TypeError as exc:
        raise TrainConfigError(f"{what}: {exc}") from None


def build_components(cfg: DictConfig, ctx: DistributedContext) -> Components:
    """Seed, build and wrap; every rank starts from identical weights (DDP also broadcasts rank 0's)."""
    rng.seed_everything(cfg.seed)
    dataset = build(cfg.data.dataset, "data.dataset")
    val_dataset = build(cfg.data.val_dataset, "data.val_dataset") if cfg.data.get("val_dataset") else None
    try:
        train_batches = ShardedBatches(dataset, int(cfg.data.batch_size), int(cfg.seed), ctx.rank, ctx.world_size,
                                       num_workers=int(cfg.data.get("num_workers", 0)),
                                       persistent_workers=bool(cfg.data.get("persistent_workers", True)))
    except (ValueError, TypeError) as exc:
        raise TrainConfigError(f"data: {exc}") from None
    eval_batches = fixed_batches(val_dataset, int(cfg.data.batch_size), int(cfg.trainer.eval_batches)) if val_dataset else []

    module = build(cfg.model, "model").to(ctx.device)
    objective = build(cfg.objective, "objective")
    if not callable(objective):
        raise TrainConfigError(f"objective: {type(objective).__name__} is not callable as objective(model, batch)")
    # `_partial_: true` nodes: the optimizer needs the parameters, the scheduler the optimizer.
    optimizer = _call(build(cfg.optim.optimizer, "optim.optimizer"), "optim.optimizer", module.parameters())
    scheduler = None
    if cfg.optim.get("scheduler"):
        scheduler = _call(build(cfg.optim.scheduler, "optim.scheduler"), "optim.scheduler", optimizer)

    model: nn.Module = module
    if cfg.trainer.compile:
        # The bare module stays what is saved; the compiled one shares its parameters.
        model = torch.compile(module)
    model = data_parallel(ctx, model)
    # From here on each rank draws its own random numbers (dropout masks differ across ranks).
    rng.seed_everything(int(cfg.seed) + 1 + ctx.rank)
    params = sum(p.numel() for p in module.parameters())
    log.info("model %s: %s parameters; %d batches of %d per epoch per rank",
             type(module).__name__, f"{params:,}", train_batches.batches_per_epoch, train_batches.batch_size)
    return Components(model, module, objective, optimizer, scheduler, train_batches, eval_batches)
