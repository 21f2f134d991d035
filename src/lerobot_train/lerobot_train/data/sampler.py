"""The order in which training visits frames: episode-aware, deterministic, resumable, split across ranks.

`EpisodeAwareSampler` follows upstream LeRobot's newest sampler (v0.6):
- only per-episode boundaries are stored (`starts`, `cum_lengths`: O(episodes) memory, whatever the episode
  length); a position k of the epoch maps to a frame with a binary search over `cum_lengths`;
- `drop_n_first_frames` / `drop_n_last_frames` cut every used episode (Diffusion drops the last 7 frames so
  that its action horizon rarely runs past the end); episodes left empty are skipped with a warning;
- the epoch's order is `torch.randperm(N)` from a generator seeded with
  `SeedSequence([seed, epoch]).generate_state(1, uint64)[0]`: a pure function of (seed, epoch), identical on
  every rank, and it never touches the global RNG;
- `__iter__` takes the stored (epoch, start_index), then immediately moves on to (epoch + 1, 0), so
  `cycle(dataloader)` walks epochs by itself; `set_epoch` / `load_state_dict` position it explicitly (use one
  of the two mechanisms, not both).

Data parallelism (our addition; upstream leaves it to accelerate's batch sharding): with `world_size > 1` every
rank builds the same epoch order and takes whole batches of it, as accelerate's `BatchSamplerShard` does. At
step s, rank r gets global positions `[(s*W + r)*B, (s*W + r + 1)*B)`. With `even_batches=True` (accelerate's
default, needed by DDP so that every rank runs the same number of steps) the epoch is padded to a multiple of
`B*W` positions by wrapping around to the START of the same epoch's order (position p beyond the end takes
`order[p % N]`, which is exactly what accelerate does), so a few frames are seen twice per epoch. With
`even_batches=False` the ranks' positions are disjoint and together exactly the epoch; the last rank(s) may get
a short or no final batch. Either way one training step consumes `B*W` positions of the epoch, which is what
`compute_sampler_state(step, ...)` assumes.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch

logger = logging.getLogger(__name__)

# Positions are mapped to frames this many at a time (one vectorised searchsorted per block).
_BLOCK = 4096


def epoch_seed(seed: int, epoch: int) -> int:
    """The generator seed of one epoch (upstream's formula): a pure function of (seed, epoch)."""
    return int(np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1, dtype=np.uint64)[0])


class EpisodeAwareSampler:
    """Frame indices of the used episodes, one epoch per `iter()`.

    Args:
        dataset_from_indices, dataset_to_indices: `[from, to)` of every episode in the dataset's index space
            (for `TrainingDataset`: `dataset.meta.dataset_from_index` / `dataset_to_index`).
        episode_indices_to_use: positions in those lists to use; None = all.
        drop_n_first_frames, drop_n_last_frames: frames cut from the start / end of every episode.
        shuffle: shuffle each epoch (seeded by (seed, epoch)); False = dataset order.
        seed: the run's seed.
        absolute_to_relative_idx: optional mapping (or callable) from a frame index to the dataset's row,
            as upstream's episode-subset datasets need. `TrainingDataset` does not need it.
        rank, world_size: this process's share of the epoch (see the module docstring).
        batch_size: the per-rank batch size; required when world_size > 1 (ranks take whole batches).
        even_batches: pad the epoch so that every rank yields the same number of full batches (DDP).
    """

    def __init__(
        self,
        dataset_from_indices: Sequence[int] | np.ndarray,
        dataset_to_indices: Sequence[int] | np.ndarray,
        episode_indices_to_use: Sequence[int] | None = None,
        drop_n_first_frames: int = 0,
        drop_n_last_frames: int = 0,
        shuffle: bool = False,
        seed: int = 0,
        absolute_to_relative_idx: Mapping[int, int] | Callable[[int], int] | None = None,
        *,
        rank: int = 0,
        world_size: int = 1,
        batch_size: int | None = None,
        even_batches: bool = True,
    ) -> None:
        if drop_n_first_frames < 0:
            raise ValueError(f"drop_n_first_frames must be >= 0, got {drop_n_first_frames}")
        if drop_n_last_frames < 0:
            raise ValueError(f"drop_n_last_frames must be >= 0, got {drop_n_last_frames}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        if world_size > 1 and (batch_size is None or batch_size < 1):
            raise ValueError(f"batch_size (>= 1) is required when world_size > 1 (ranks take whole batches), got {batch_size}")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")

        from_idx = np.asarray(dataset_from_indices, dtype=np.int64).reshape(-1)
        to_idx = np.asarray(dataset_to_indices, dtype=np.int64).reshape(-1)
        if from_idx.shape != to_idx.shape:
            raise ValueError(
                f"dataset_from_indices and dataset_to_indices must have the same length, got {len(from_idx)} and {len(to_idx)}"
            )
        used = np.ones(len(from_idx), dtype=bool)
        if episode_indices_to_use is not None:
            wanted = np.asarray(list(episode_indices_to_use), dtype=np.int64)
            bad = wanted[(wanted < 0) | (wanted >= len(from_idx))]
            if bad.size:
                raise ValueError(f"episode_indices_to_use {bad.tolist()} out of range: there are {len(from_idx)} episodes")
            used = np.zeros(len(from_idx), dtype=bool)
            used[wanted] = True
        starts = from_idx + drop_n_first_frames
        lengths = to_idx - drop_n_last_frames - starts
        for ep in np.flatnonzero(used & (lengths <= 0)):
            logger.warning(
                "episode %d has %d frames: drop_n_first_frames=%d and drop_n_last_frames=%d leave none; skipping it",
                ep, int(to_idx[ep] - from_idx[ep]), drop_n_first_frames, drop_n_last_frames,
            )
        used &= lengths > 0
        if not used.any():
            raise ValueError(
                "no frames remain after drop_n_first_frames/drop_n_last_frames: every episode was filtered out or too short"
            )
        self._starts = starts[used]
        self._cum_lengths = np.cumsum(lengths[used])
        self._num_frames = int(self._cum_lengths[-1])
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.batch_size = int(batch_size) if batch_size is not None else None
        self.even_batches = bool(even_batches)
        self._absolute_to_relative = absolute_to_relative_idx
        self._epoch = 0
        self._start_index = 0

    # ---------------------------------------------------------------- sizes
    @property
    def num_frames(self) -> int:
        """Frames in one epoch of the whole run (all ranks, no padding): what compute_sampler_state needs."""
        return self._num_frames

    @property
    def num_episodes(self) -> int:
        return len(self._starts)

    def batches_per_epoch(self) -> int | None:
        """Steps in one epoch for every rank (even_batches), as compute_sampler_state counts them."""
        if self.batch_size is None:
            return None
        return math.ceil(math.ceil(self._num_frames / self.batch_size) / self.world_size)

    def __len__(self) -> int:
        """Positions this rank yields in a full epoch (all frames when world_size == 1)."""
        n, w = self._num_frames, self.world_size
        if w == 1:
            return n
        b = self.batch_size
        assert b is not None
        if self.even_batches:
            return math.ceil(math.ceil(n / b) / w) * b
        full_batches, rest = divmod(n, b)  # global batch j goes to rank j % w
        mine = max(0, math.ceil((full_batches - self.rank) / w)) * b
        return mine + (rest if rest and full_batches % w == self.rank else 0)

    @property
    def indices(self) -> list[int]:
        """All frame indices in dataset order: O(frames), for inspection only."""
        return self._frames_of(np.arange(self._num_frames, dtype=np.int64)).tolist()

    # ---------------------------------------------------------------- state
    @property
    def epoch(self) -> int:
        return self._epoch

    def set_epoch(self, epoch: int) -> None:
        self._epoch = int(epoch)
        self._start_index = 0

    def state_dict(self) -> dict[str, int]:
        """{"epoch", "start_index"}: start_index counts global positions of the epoch (all ranks)."""
        return {"epoch": self._epoch, "start_index": self._start_index}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        missing = [k for k in ("epoch", "start_index") if k not in state]
        if missing:
            raise KeyError(f"sampler state lacks {missing}; expected {{'epoch': int, 'start_index': int}}, got {dict(state)}")
        start = int(state["start_index"])
        if not 0 <= start <= self._num_frames:
            raise ValueError(f"sampler start_index {start} is outside 0..{self._num_frames} (frames per epoch)")
        self._epoch = int(state["epoch"])
        self._start_index = start

    # ---------------------------------------------------------------- order
    def epoch_order(self, epoch: int) -> torch.Tensor | None:
        """Positions of `epoch` in visiting order (None when not shuffling: the identity)."""
        if not self.shuffle:
            return None
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, epoch))
        return torch.randperm(self._num_frames, generator=generator)

    def _frames_of(self, positions: np.ndarray) -> np.ndarray:
        episode = np.searchsorted(self._cum_lengths, positions, side="right")
        before = np.where(episode > 0, self._cum_lengths[np.maximum(episode - 1, 0)], 0)
        return self._starts[episode] + (positions - before)

    def _rank_positions(self, start_index: int) -> np.ndarray:
        """Global epoch positions (before taking `order[p % N]`) this rank visits, from `start_index` on."""
        n = self._num_frames
        if self.world_size == 1:
            return np.arange(start_index, n, dtype=np.int64)
        b, w = self.batch_size, self.world_size
        assert b is not None
        # Steps are counted from start_index, so every rank gets the same number of batches even when a resume
        # starts mid-step (a changed batch size or world size); from a step boundary this is the original grid.
        remaining = n - start_index
        steps = math.ceil(math.ceil(remaining / b) / w) if self.even_batches else math.ceil(remaining / (b * w))
        step = np.arange(steps, dtype=np.int64)[:, None]
        offset = np.arange(b, dtype=np.int64)[None, :]
        positions = start_index + ((step * w + self.rank) * b + offset).reshape(-1)
        if not self.even_batches:
            positions = positions[positions < n]
        return positions

    def __iter__(self) -> Iterator[int]:
        # Advance eagerly (not on first consumption), as upstream: the next iter() is the next epoch.
        epoch, start = self._epoch, self._start_index
        self._epoch += 1
        self._start_index = 0
        return self._iter_epoch(epoch, start)

    def _iter_epoch(self, epoch: int, start: int) -> Iterator[int]:
        positions = self._rank_positions(start)
        order = self.epoch_order(epoch)
        order_np = order.numpy() if order is not None else None
        for i in range(0, positions.size, _BLOCK):
            block = positions[i : i + _BLOCK] % self._num_frames
            if order_np is not None:
                block = order_np[block]
            for frame in self._frames_of(block).tolist():
                yield self._to_row(frame)

    def _to_row(self, frame: int) -> int:
        mapping = self._absolute_to_relative
        if mapping is None:
            return frame
        return int(mapping(frame)) if callable(mapping) else int(mapping[frame])

    def __repr__(self) -> str:
        return (
            f"EpisodeAwareSampler(frames={self._num_frames}, episodes={self.num_episodes}, shuffle={self.shuffle}, "
            f"seed={self.seed}, rank={self.rank}/{self.world_size}, batch_size={self.batch_size}, "
            f"even_batches={self.even_batches}, epoch={self._epoch}, start_index={self._start_index})"
        )


# ==================================================================================== resume from a step
def compute_sampler_state(step: int, num_frames: int, batch_size: int, num_processes: int) -> dict[str, int]:
    """The sampler state after `step` optimisation micro-steps (upstream's formula).

    One step consumes `batch_size * num_processes` positions; an epoch has
    `ceil(ceil(num_frames / batch_size) / num_processes)` steps per rank (even_batches padding included).
    `num_frames` is the sampler's `num_frames` (the whole epoch, not one rank's share).
    """
    if step < 0 or num_frames < 1 or batch_size < 1 or num_processes < 1:
        raise ValueError(
            f"need step >= 0 and positive num_frames, batch_size, num_processes; got step={step}, "
            f"num_frames={num_frames}, batch_size={batch_size}, num_processes={num_processes}"
        )
    batches_per_epoch = math.ceil(math.ceil(num_frames / batch_size) / num_processes)
    epoch, batches_into_epoch = divmod(int(step), batches_per_epoch)
    start_index = min(batches_into_epoch * batch_size * num_processes, num_frames)
    return {"epoch": epoch, "start_index": start_index}


@dataclass(frozen=True)
class TrainingStepRecord:
    """What `training_state/training_step.json` records (upstream HEAD's keys), so that a resume can place the
    sampler exactly and notice a change of batch size or data-parallel world size.

    `step` counts micro-batches (loop iterations); the sampler offset is `step * batch_size * dp_world_size`
    with no gradient-accumulation factor.
    """

    step: int
    dp_world_size: int | None = None
    batch_size: int | None = None
    grad_accum_steps: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "dp_world_size": self.dp_world_size,
            "batch_size": self.batch_size,
            "grad_accum_steps": self.grad_accum_steps,
            # Plain data parallelism only: every rank holds a full replica.
            "parallelism": {"dp_replicate": self.dp_world_size, "dp_shard": 1, "ring_degree": 1, "ulysses_degree": 1},
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], where: str = "training_step.json") -> "TrainingStepRecord":
        """Read HEAD's keys; [0.4.4] wrote only {"step"} and some versions `num_processes` for the world size."""
        if "step" not in obj:
            raise KeyError(f"{where}: missing 'step' (got keys {sorted(obj)})")
        world = obj.get("dp_world_size", obj.get("num_processes"))
        return cls(
            step=int(obj["step"]),
            dp_world_size=int(world) if world is not None else None,
            batch_size=int(obj["batch_size"]) if obj.get("batch_size") is not None else None,
            grad_accum_steps=int(obj["grad_accum_steps"]) if obj.get("grad_accum_steps") is not None else None,
        )


def resume_sampler_state(
    record: TrainingStepRecord | Mapping[str, Any], num_frames: int, batch_size: int, world_size: int
) -> dict[str, int]:
    """Sampler state to resume from a checkpoint's training-step record.

    The position reached is computed with the batch size and world size THE CHECKPOINT was written with (the
    current ones stand in for checkpoints that did not record them); a warning says when the current run
    differs, because then the epoch resumes at the right position but the per-rank split is not the one the
    interrupted run would have used.
    """
    if not isinstance(record, TrainingStepRecord):
        record = TrainingStepRecord.from_json(record)
    ckpt_world = record.dp_world_size or world_size
    ckpt_batch = record.batch_size or batch_size
    if record.dp_world_size is not None and record.dp_world_size != world_size:
        logger.warning(
            "resuming with world size %d but the checkpoint was written with %d: the data order resumes at the "
            "right epoch and position, but the per-rank split differs from the interrupted run",
            world_size, record.dp_world_size,
        )
    if record.batch_size is not None and record.batch_size != batch_size:
        logger.warning(
            "resuming with batch_size %d but the checkpoint was written with %d: the data order resumes at the "
            "right epoch and position, but the batches differ from the interrupted run",
            batch_size, record.batch_size,
        )
    return compute_sampler_state(record.step, num_frames, ckpt_batch, ckpt_world)
