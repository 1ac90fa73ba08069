"""Batches for training and inference, sliced from packed storage."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import lightning as L
import numpy as np
import torch

from molgraph.batch import GraphBatch
from molgraph.data.dataset import GraphDataset
from molgraph.data.splits import SplitIndices
from molgraph.packed import Padding


class GraphLoader:
    """Iterates GraphBatches over ``indices`` of a dataset.

    Each batch is a slice of the packed storage (:meth:`PackedGraphs.batch`), so no
    per-molecule Python runs. With ``shuffle``, epoch ``k`` uses the order drawn from
    ``seed + k``. Under ``torch.distributed`` (unless ``distributed=False``) every rank takes
    every ``world_size``-th item of the order: a shuffled (training) order is first padded
    by repeating items, as a DistributedSampler does, so every rank takes the same number of
    steps; an evaluation order is not, so the ranks' predictions together hold every item
    exactly once (their lengths may differ by one).
    """

    def __init__(
        self,
        dataset: GraphDataset,
        indices: np.ndarray,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
        padding: Padding | None = None,
        distributed: bool = True,
    ) -> None:
        self.dataset = dataset
        self.distributed = distributed
        self.padding = padding
        self.indices = np.asarray(indices, dtype=np.int64)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0

    def _order(self) -> np.ndarray:
        order = self.indices
        if self.shuffle:
            order = np.random.default_rng(self.seed + self.epoch).permutation(order)
        if (
            self.distributed
            and torch.distributed.is_available()
            and torch.distributed.is_initialized()
        ):
            rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
            if self.shuffle:
                order = np.resize(order, -(-len(order) // world) * world)
            order = order[rank::world]
        return order

    def _bounds(self, n: int) -> list[int]:
        """Batch start offsets plus the end; a trailing batch of one graph joins the one
        before it (batch normalisation cannot normalise a single graph's statistics)."""
        stop = n - n % self.batch_size if self.drop_last else n
        bounds = [*list(range(0, stop, self.batch_size)), stop]
        if len(bounds) > 2 and bounds[-1] - bounds[-2] == 1:
            del bounds[-2]
        return bounds if stop > 0 else [0]

    def __len__(self) -> int:
        return len(self._bounds(len(self._order()))) - 1

    def __iter__(self) -> Iterator[GraphBatch]:
        order = torch.from_numpy(self._order())
        self.epoch += 1
        bounds = self._bounds(len(order))
        for start, end in itertools.pairwise(bounds):
            yield self.dataset.batch(order[start:end], self.padding)


class GraphDataModule(L.LightningDataModule):
    """Train/val/test loaders over one dataset and its split.

    With ``data_on_device`` the packed dataset is moved once to the training device (a
    GPU), and batches are formed there. With ``pad_train_batches``, training batches on a
    GPU are padded to a few fixed sizes (for CUDA graphs, see ``PropertyModel``).
    """

    def __init__(
        self,
        dataset: GraphDataset,
        split: SplitIndices,
        batch_size: int = 64,
        eval_batch_size: int = 1024,
        seed: int = 0,
        data_on_device: bool = True,
        pad_train_batches: bool = False,
    ) -> None:
        super().__init__()
        self.pad_train_batches = pad_train_batches
        self.padding: Padding | None = None
        self.dataset = dataset
        self.split = split
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.seed = seed
        self.data_on_device = data_on_device

    def setup(self, stage: str | None = None) -> None:
        device = self.trainer.strategy.root_device if self.trainer is not None else None
        on_gpu = device is not None and device.type == "cuda"
        if self.data_on_device and on_gpu and device is not None:
            self.dataset = self.dataset.to(device)
        if self.pad_train_batches and on_gpu:
            self.padding = Padding(graphs=self.batch_size + 1)

    def train_dataloader(self) -> GraphLoader:
        return GraphLoader(
            self.dataset,
            self.split.train,
            self.batch_size,
            shuffle=True,
            seed=self.seed,
            padding=self.padding,
        )

    def eval_loader(self, part: str, distributed: bool = True) -> GraphLoader:
        """Batches of the ``part`` ("val" or "test") items in split order; with
        ``distributed=False`` all of them, also under DDP (rank zero's final evaluation)."""
        indices = getattr(self.split, part)
        return GraphLoader(self.dataset, indices, self.eval_batch_size, distributed=distributed)

    def val_dataloader(self) -> GraphLoader:
        return self.eval_loader("val")

    def test_dataloader(self) -> GraphLoader:
        return self.eval_loader("test")
