"""How accelerate shards a sampler's batches across data-parallel processes (run with the .venv-oracle python).

    python tests/oracle/accelerate_batch_shards.py JOBS.json OUT.json

JOBS.json: a list of {"positions": [...], "batch_size": B, "num_processes": W, "even_batches": bool}. For every
job, OUT.json gets one list per process: the flat list of positions that process's
`accelerate.data_loader.BatchSamplerShard(BatchSampler(positions, B, drop_last=False), W, rank,
split_batches=False, even_batches=...)` yields, i.e. what each rank trains on under `accelerate launch`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from accelerate.data_loader import BatchSamplerShard
from torch.utils.data import BatchSampler


def main() -> None:
    jobs = json.loads(Path(sys.argv[1]).read_text())
    out = []
    for job in jobs:
        batches = BatchSampler(job["positions"], job["batch_size"], drop_last=False)
        per_rank = []
        for rank in range(job["num_processes"]):
            shard = BatchSamplerShard(batches, job["num_processes"], rank, split_batches=False,
                                      even_batches=job["even_batches"])
            per_rank.append([int(i) for batch in shard for i in batch])
        out.append(per_rank)
    Path(sys.argv[2]).write_text(json.dumps(out))


if __name__ == "__main__":
    main()
