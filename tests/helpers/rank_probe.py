"""A callback that records what each data-parallel rank trained on (tests only)."""

import hashlib
import json
from pathlib import Path

from lightning.pytorch.callbacks import Callback


class RankProbe(Callback):
    """Writes ``rank_<r>.json`` into ``out_dir``: label sums of every batch and a hash of the final weights."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = Path(out_dir)
        self.batches: list[list[int]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.batches.append(batch[1].tolist())

    def on_train_end(self, trainer, pl_module) -> None:
        digest = hashlib.sha256()
        for name, tensor in sorted(pl_module.model.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().numpy().tobytes())
        self.out_dir.mkdir(parents=True, exist_ok=True)
        record = {
            "rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "batches": self.batches,
            "weights_sha256": digest.hexdigest(),
        }
        (self.out_dir / f"rank_{trainer.global_rank}.json").write_text(json.dumps(record))
