"""Seeds from names (``numpy.random.SeedSequence``, never Python ``hash()``) and determinism.

Streams per cell:

* the **pair seed** over (suite, dataset, seed): initial labelled set, initial weights and
  training shuffles. Every method of the same dataset and seed starts from the same
  labelled set and the same weights, so comparisons over seeds are *paired*;
* the **strategy seed** over (suite, dataset, strategy and its options, seed): the strategy's
  RNG. It leaves out the loss, trainer and mask source, so a strategy draws the same random
  numbers whichever training method it is paired with: ``random`` with two losses that are
  equal on a dataset acquires the same samples and trains bitwise the same models;
* the **cell seed** over (suite, dataset, method, seed): ``TrainJob.cell_seed``.

Per-round generators are derived by spawning with the round index as extra entropy.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from typing import Any

import numpy as np
import torch

__all__ = ["name_seed", "derive", "strategy_seed", "configure_determinism", "seed_everything"]


def _words(text: str) -> list[int]:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]


def name_seed(*parts: str | int) -> int:
    """A 63-bit seed from names and integers, stable across processes and machines."""
    entropy: list[int] = []
    for part in parts:
        entropy.extend(_words(str(part)))
    state = np.random.SeedSequence(entropy).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1)


def derive(seed: int, *purpose: str | int) -> int:
    """A sub-seed of ``seed`` for a named purpose (e.g. ``derive(s, "train", 3)``)."""
    return name_seed(seed, *purpose)


def strategy_seed(suite: str, dataset: str, strategy: dict[str, Any], seed: int) -> int:
    """The seed of a strategy's RNG: its name and options (``ComponentSpec.identity()``), not the method's
    loss, trainer or mask source."""
    return name_seed(suite, dataset, "strategy", json.dumps(strategy, sort_keys=True, default=str), seed)


def configure_determinism(threads: int, device: torch.device) -> None:
    """Deterministic kernels, explicit thread count, cuDNN deterministic."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.set_num_threads(max(1, int(threads)))
    torch.use_deterministic_algorithms(True, warn_only=device.type == "cuda")
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy's legacy RNG and torch; return a CPU generator with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
