"""The LightningModule: encoder + head trained on a Task."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from molgraph.batch import GraphBatch
from molgraph.errors import CheckpointError
from molgraph.models.recipe import Recipe
from molgraph.models.tasks import Task

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


class PropertyModel(L.LightningModule):
    """Graph-level property prediction.

    Parameters
    ----------
    encoder
        GraphBatch → EncoderOutput (``out_dim`` attribute gives the embedding width).
    head
        ``[G, out_dim]`` → ``[G, T]``.
    task
        Loss, metrics and monitored key.
    target_mean, target_std
        ``[T]`` training-set statistics; regression targets are standardised with them for
        the loss and predictions are un-scaled with them. Defaults: 0 and 1.
    optimizer
        Called with the parameters (e.g. ``functools.partial(torch.optim.AdamW, lr=1e-3)``).
    warmup_epochs
        Linear learning-rate warm-up; afterwards the rate follows a cosine down to
        ``final_lr_fraction`` of its peak at the last epoch (chemprop uses a similar
        warm-up-then-decay schedule). ``cosine=False`` keeps it constant after warm-up.
    cuda_graphs
        On CUDA, run the training forward and backward of padded batches as captured CUDA
        graphs (one per padded size), so a step costs a few launches instead of hundreds.
        The data module pads training batches when this is set. Under CUDA autocast
        (``trainer.precision=bf16-mixed``) steps run eagerly: torch cannot capture
        Lightning's autocast, whose cast cache is on.
    recipe
        How to rebuild this model and featurize its inputs; stored in every checkpoint.
    """

    def __init__(
        self,
        encoder: nn.Module,
        head: nn.Module,
        task: Task,
        target_mean: Tensor | None = None,
        target_std: Tensor | None = None,
        optimizer: OptimizerFactory | None = None,
        warmup_epochs: float = 2.0,
        cosine: bool = True,
        final_lr_fraction: float = 0.05,
        cuda_graphs: bool = False,
        recipe: Recipe | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.task = task
        n = len(task.names)
        mean = torch.zeros(n) if target_mean is None else torch.as_tensor(target_mean).float()
        std = torch.ones(n) if target_std is None else torch.as_tensor(target_std).float()
        self.register_buffer("target_mean", mean)
        self.register_buffer("target_std", std)
        self.optimizer_factory = optimizer or (lambda p: torch.optim.AdamW(p, lr=1e-3))
        self.warmup_epochs = warmup_epochs
        self.cosine = cosine
        self.final_lr_fraction = final_lr_fraction
        self.cuda_graphs = cuda_graphs
        self._graphed: dict[tuple[int, int, int], Callable] = {}
        self.recipe = recipe
        self._outputs: dict[str, list[tuple[Tensor, Tensor, Tensor]]] = {"val": [], "test": []}

    @classmethod
    def from_recipe(
        cls, recipe: Recipe, state_dict: dict[str, Tensor], where: str = "checkpoint recipe"
    ) -> PropertyModel:
        """A trained model rebuilt from its recipe and weights, in eval mode."""
        if recipe.head is None or recipe.task is None:
            raise CheckpointError(f"{where} lacks 'head' and 'task': it cannot predict")
        model = cls(recipe.build_encoder(where), recipe.head.build(f"{where} (head)"),
                    recipe.task, recipe=recipe)  # fmt: skip
        try:
            model.load_state_dict(state_dict)
        except RuntimeError as exc:
            raise CheckpointError(f"weights do not match the recipe: {exc}") from None
        return model.eval()

    def forward(self, batch: GraphBatch) -> Tensor:
        """Raw outputs ``[G, task.num_outputs]``: standardised values (and raw variances
        of a mean-variance head) or logits."""
        return self.head(self.encoder(batch).graph)

    def embed(self, batch: GraphBatch) -> Tensor:
        """Graph embeddings ``[G, out_dim]``."""
        return self.encoder(batch).graph

    def predict_batch(self, batch: GraphBatch, variance: bool = False) -> Tensor:
        """Predictions ``[G, T]`` in target units (probabilities for classification); with
        ``variance``, ``[G, 2T]``: then the predicted variances in squared target units
        (a mean-variance head's; zeros for a model without one)."""
        output = self(batch)
        pred = self._in_units(output)
        if not variance:
            return pred
        var = self.task.split_outputs(output)[1]
        var = torch.zeros_like(pred) if var is None else var * self.target_std**2
        return torch.cat([pred, var], dim=-1)

    def _in_units(self, output: Tensor) -> Tensor:
        """Raw outputs → target units (classification targets keep mean 0 and std 1)."""
        if self.task.kind == "classification":
            return self.task.activation(output)
        mean = self.task.split_outputs(output)[0]
        return self.task.activation(mean * self.target_std + self.target_mean)

    @torch.inference_mode()
    def predict_batches(self, batches: Iterable[GraphBatch], variance: bool = False) -> Tensor:
        """Predictions ``[n, T]`` (``[n, 2T]`` with ``variance``: see :meth:`predict_batch`)
        in target units for every batch, in order, on the CPU."""
        self.eval()
        outputs = [self.predict_batch(b.to(self.device), variance).float().cpu() for b in batches]
        width = len(self.task.names) * (2 if variance else 1)
        return torch.cat(outputs) if outputs else torch.zeros(0, width)

    def _loss(self, batch: GraphBatch, output: Tensor) -> Tensor:
        target = batch.y
        if self.task.kind != "classification":
            target = (target - self.target_mean) / self.target_std
        return self.task.loss(output, target, batch.y_mask)

    def _training_output(self, batch: GraphBatch) -> Tensor:
        # torch captures no autocast region whose cast cache is on (Lightning's is)
        capture = self.cuda_graphs and batch.x.is_cuda and batch.node_mask is not None
        if not capture or torch.is_autocast_enabled("cuda"):
            return self(batch)
        key = (batch.num_nodes, batch.num_edges, batch.num_graphs)
        if key not in self._graphed:
            self._graphed[key] = self._capture(batch)
        return self._graphed[key](*_TensorForward.inputs(batch))

    def _capture(self, batch: GraphBatch) -> Callable:
        # capture runs a few warm-up steps; they must not move the running statistics
        saved = {name: b.clone() for name, b in self.named_buffers()}
        forward = _TensorForward(
            self.encoder, self.head, batch.num_graphs, _TensorForward.optional_fields(batch)
        )
        # a graph differentiates only parameters the prediction uses (an EGNN's last
        # coordinate update, for example, only moves the output coordinates)
        inputs = _TensorForward.inputs(batch)
        params = [p for p in forward.parameters() if p.requires_grad]
        grads = torch.autograd.grad(forward(*inputs).sum(), params, allow_unused=True)
        forward.used = [p for p, g in zip(params, grads, strict=True) if g is not None]
        # the graph keeps its sample inputs as static buffers: give it copies it can own
        graphed = torch.cuda.make_graphed_callables(forward, tuple(t.clone() for t in inputs))
        with torch.no_grad():
            for name, b in self.named_buffers():
                b.copy_(saved[name])
        return graphed

    def training_step(self, batch: GraphBatch, batch_idx: int) -> Tensor:
        loss = self._loss(batch, self._training_output(batch))
        # sync_dist: under DDP the epoch's loss is the mean over every rank (once per epoch)
        self.log(
            "train/loss",
            loss,
            on_step=False,
            on_epoch=True,
            batch_size=batch.num_graphs,
            sync_dist=True,
        )
        return loss

    def _eval_step(self, batch: GraphBatch, stage: str) -> None:
        output = self(batch)
        self.log(
            f"{stage}/loss",
            self._loss(batch, output),
            batch_size=batch.num_graphs,
            sync_dist=True,
        )
        pred = self._in_units(output)
        self._outputs[stage].append((pred.detach(), batch.y, batch.y_mask))

    def _eval_epoch_end(self, stage: str) -> None:
        outputs, self._outputs[stage] = self._outputs[stage], []
        if not outputs:
            return
        pred, y, mask = (torch.cat(parts) for parts in zip(*outputs, strict=True))
        if self.trainer.world_size > 1:  # every rank holds its share of the items
            pred, y, mask = (_gather_rows(self, t) for t in (pred, y, mask))
        metrics = self.task.metrics(pred, y, mask)
        self.log_dict({f"{stage}/{k}": v for k, v in metrics.items()}, sync_dist=False)

    def validation_step(self, batch: GraphBatch, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def test_step(self, batch: GraphBatch, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = self.optimizer_factory(self.parameters())
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        per_epoch = total / max(self.trainer.max_epochs or 1, 1)
        warmup = max(int(self.warmup_epochs * per_epoch), 1)
        floor = self.final_lr_fraction

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            if not self.cosine:
                return 1.0
            progress = min((step - warmup) / max(total - warmup, 1), 1.0)
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["molgraph"] = {} if self.recipe is None else self.recipe.to_dict()


def _gather_rows(module: L.LightningModule, rows: Tensor) -> Tensor:
    """Every rank's ``rows`` ``[n_rank, ...]`` concatenated in rank order (lengths may differ)."""
    sizes = module.all_gather(torch.tensor(rows.shape[0], device=rows.device)).tolist()
    padded = rows.new_zeros((max(sizes), *rows.shape[1:]), dtype=torch.float64)
    padded[: rows.shape[0]] = rows  # float64: all_gather takes any dtype this way, bool too
    gathered = module.all_gather(padded)
    return torch.cat([part[:n] for part, n in zip(gathered, sizes, strict=True)]).to(rows.dtype)


_OPTIONAL_INPUTS = GraphBatch.node_field_names  # fields a captured step may take


class _TensorForward(nn.Module):
    """encoder + head as a function of tensors only (what a CUDA graph can replay)."""

    def __init__(
        self, encoder: nn.Module, head: nn.Module, num_graphs: int, optional: tuple[str, ...] = ()
    ) -> None:
        super().__init__()
        self.encoder, self.head, self.num_graphs = encoder, head, num_graphs
        self.optional = optional  # which of _OPTIONAL_INPUTS follow the fixed inputs
        self.used: list[nn.Parameter] | None = None

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]:
        """The parameters the output depends on, once known (what a graph differentiates)."""
        return iter(self.used) if self.used is not None else super().parameters(recurse)

    @staticmethod
    def optional_fields(batch: GraphBatch) -> tuple[str, ...]:
        return tuple(name for name in _OPTIONAL_INPUTS if getattr(batch, name) is not None)

    @staticmethod
    def inputs(batch: GraphBatch) -> tuple[Tensor, ...]:
        assert batch.node_mask is not None
        tensors = (batch.x, batch.src, batch.dst, batch.edge_attr, batch.batch, batch.node_mask)
        optional = _TensorForward.optional_fields(batch)
        return (*tensors, *(getattr(batch, name) for name in optional))

    def forward(self, x, src, dst, edge_attr, graph, node_mask, *optional: Tensor) -> Tensor:
        batch = GraphBatch(
            x,
            src,
            dst,
            edge_attr,
            graph,
            self.num_graphs,
            node_mask=node_mask,
            **dict(zip(self.optional, optional, strict=True)),
        )
        return self.head(self.encoder(batch).graph)
