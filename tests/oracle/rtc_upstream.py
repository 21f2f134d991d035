"""Run UPSTREAM lerobot 0.4.4's RTC maths on given cases (run with the .venv-oracle python).

    python tests/oracle/rtc_upstream.py CASES.npz OUT.npz

CASES.npz holds, per case i: `<i>|x_t`, `<i>|velocity` (the x-independent velocity the denoiser returns),
`<i>|prev` (the left-over prefix), `<i>|meta` = [time, inference_delay, execution_horizon, max_guidance_weight,
schedule index into SCHEDULES]; and `weights|<schedule>|<start>|<end>|<total>` markers (empty arrays) asking for
`RTCProcessor.get_prefix_weights`. An optional `<i>|velocity_matrix` (A, A) makes the denoiser depend on x_t:
it returns `velocity + x_t @ velocity_matrix`. OUT.npz gets `<i>|guided` and `weights|...` with upstream's results.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import oracle_shims  # noqa: F401,E402  (before lerobot)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from lerobot.configs.types import RTCAttentionSchedule  # noqa: E402
from lerobot.policies.rtc.configuration_rtc import RTCConfig  # noqa: E402
from lerobot.policies.rtc.modeling_rtc import RTCProcessor  # noqa: E402

SCHEDULES = ["ZEROS", "ONES", "LINEAR", "EXP"]


def main() -> None:
    cases = np.load(sys.argv[1])
    out: dict[str, np.ndarray] = {}
    for name in cases.files:
        if name.startswith("weights|"):
            _, schedule, start, end, total = name.split("|")
            processor = RTCProcessor(RTCConfig(prefix_attention_schedule=RTCAttentionSchedule(schedule)))
            out[name] = processor.get_prefix_weights(int(start), int(end), int(total)).numpy()
        elif name.endswith("|meta"):
            i = name.split("|")[0]
            time, delay, horizon, beta, schedule = cases[name].tolist()
            processor = RTCProcessor(RTCConfig(
                prefix_attention_schedule=RTCAttentionSchedule(SCHEDULES[int(schedule)]), max_guidance_weight=beta,
            ))
            velocity = torch.from_numpy(cases[f"{i}|velocity"])
            matrix = torch.from_numpy(cases[f"{i}|velocity_matrix"]) if f"{i}|velocity_matrix" in cases.files else None

            def denoiser(x, v=velocity, m=matrix):
                return v.clone() if m is None else v + x @ m

            with torch.no_grad():
                guided = processor.denoise_step(
                    x_t=torch.from_numpy(cases[f"{i}|x_t"]),
                    prev_chunk_left_over=torch.from_numpy(cases[f"{i}|prev"]),
                    inference_delay=int(delay),
                    time=float(time),
                    original_denoise_step_partial=denoiser,
                    execution_horizon=int(horizon),
                )
            out[f"{i}|guided"] = guided.numpy()
    np.savez(sys.argv[2], **out)


if __name__ == "__main__":
    main()
