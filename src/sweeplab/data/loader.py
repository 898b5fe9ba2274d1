"""A batch iterator over in-memory tensors: the fast path that replaces DataLoader.

Per-sample ``Dataset.__getitem__`` plus PIL transforms plus collation costs more
than the forward pass of a small network on a CPU. With the whole dataset held in
one tensor, a batch is a single indexing operation.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch


class TensorBatches:
    """Iterate ``(images[idx], labels[idx])`` batches over a fixed index set.

    Args:
        images, labels: the full tensors (any device).
        indices: which samples this loader covers.
        batch_size: samples per batch; the last batch may be smaller unless ``drop_last``.
        shuffle: reshuffle every epoch with a generator seeded by ``seed + epoch``,
            so the order is reproducible, independent of global RNG state, and the
            same after resuming from a checkpoint.
        rank, world_size: for data-parallel training each rank takes every
            ``world_size``-th sample of the same permutation (different batches per rank,
            ``batch_size`` samples each, like ``DistributedSampler``).
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        indices: torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.images = images
        self.labels = labels
        self.indices = indices
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        # Lightning calls ``loader.sampler.set_epoch(epoch)`` before every epoch;
        # this loader is its own sampler, so the trainer's epoch drives the shuffle.
        self.sampler = self
        self.batch_sampler = None  # Lightning inspects DataLoader-like attributes

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def shard_size(self) -> int:
        """Samples this rank covers in an epoch."""
        return self._shard_size()

    def last_batch_size(self) -> int:
        """Samples in the epoch's last batch when it is kept (``batch_size`` when the samples divide evenly)."""
        n = self._shard_size()
        return n % self.batch_size or min(n, self.batch_size)

    def _shard_size(self) -> int:
        """Samples this rank covers: an equal share when shuffling (training ranks must step
        together), every ``world_size``-th sample otherwise (evaluation sees every sample)."""
        n = len(self.indices)
        if self.world_size == 1:
            return n
        return n // self.world_size if self.shuffle else len(range(self.rank, n, self.world_size))

    def __len__(self) -> int:
        """Batches per epoch."""
        n = self._shard_size()
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = self.indices
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = order[torch.randperm(len(order), generator=generator)]
        # every rank draws the same permutation and takes its own stride of it
        order = order[self.rank :: self.world_size][: self._shard_size()].to(self.images.device)
        for batch in range(len(self)):
            idx = order[batch * self.batch_size : (batch + 1) * self.batch_size]
            yield self.images[idx], self.labels[idx]
