"""Frame clock and stamp alignment: selection rule, rejections and their counts, and live/offline determinism."""
import random

import numpy as np
import pytest

from lerobot_recorder.alignment import (
    NS_PER_S,
    DropReason,
    Frame,
    FrameAssembler,
    FrameClock,
    MissReason,
    Sample,
    SkippedTick,
    StreamSpec,
)

MS = 1_000_000  # ns


def assembler(*specs, latency_s=0.0, start_ns=None, fps=10, capacity=256):
    clock = FrameClock(fps, start_ns) if start_ns is not None else None
    return FrameAssembler(list(specs), clock, latency_s, capacity)


# ------------------------------------------------------------------------------------------------- clock
def test_frame_clock_ticks_are_computed_from_the_index():
    clock = FrameClock(30, 5 * NS_PER_S)
    assert [clock.time_ns(i) - 5 * NS_PER_S for i in range(4)] == [0, 33_333_333, 66_666_667, 100_000_000]
    assert clock.time_ns(30 * 3600) == 5 * NS_PER_S + 3600 * NS_PER_S  # no drift after an hour
    assert clock.advance() == (0, 5 * NS_PER_S)
    assert clock.next_index == 1 and clock.next_time_ns == 5 * NS_PER_S + 33_333_333
    assert clock.ticks_until(5 * NS_PER_S + 100_000_000) == 3
    for bad in (0, -30, 29.97, True):
        with pytest.raises(ValueError, match="fps must be a positive integer"):
            FrameClock(bad, 0)


# ------------------------------------------------------------------------------------------ selection
def test_newest_message_at_or_before_the_tick_with_its_age():
    a = assembler(StreamSpec("state", max_age_s=1.0))
    for stamp, value in [(0, "s0"), (30 * MS, "s30"), (60 * MS, "s60"), (90 * MS, "s90")]:
        assert a.add(Sample("state", stamp, value)) is None
    frame = a.evaluate(50 * MS, tick_index=0)
    assert isinstance(frame, Frame)
    assert frame.value("state") == "s30"
    assert frame.values["state"].stamp_ns == 30 * MS
    assert frame.values["state"].age_s == pytest.approx(0.020)
    assert a.evaluate(60 * MS).value("state") == "s60"  # stamped exactly at the tick counts
    assert a.evaluate(89 * MS).value("state") == "s60"


def test_future_stamps_wait_for_a_later_tick():
    a = assembler(StreamSpec("cam", max_age_s=1.0))
    a.add(Sample("cam", 120 * MS, "future"))
    miss = a.evaluate(100 * MS)
    assert isinstance(miss, SkippedTick) and miss.reasons == {"cam": MissReason.MISSING}
    assert a.evaluate(120 * MS).value("cam") == "future"


def test_stale_value_rejected_and_counted_never_held():
    a = assembler(StreamSpec("state", max_age_s=0.05), StreamSpec("cam", max_age_s=0.5))
    a.add(Sample("state", 0, "old"))
    a.add(Sample("cam", 0, "img"))
    ok = a.evaluate(50 * MS)
    assert isinstance(ok, Frame)  # age 0.05 == limit is accepted
    result = a.evaluate(51 * MS)
    assert isinstance(result, SkippedTick)
    assert result.reasons == {"state": MissReason.STALE}
    assert "0.051 s old, limit 0.050 s" in result.details["state"]
    assert a.counters("state").misses == {"stale": 1}
    assert a.counters("cam").misses == {} and a.ticks_skipped == 1 and a.frames_produced == 1


def test_missing_required_feature_produces_no_frame():
    a = assembler(StreamSpec("state", 1.0), StreamSpec("cam", 1.0), StreamSpec("task", None, required=False))
    a.add(Sample("state", 0, np.zeros(6)))
    result = a.evaluate(10 * MS, tick_index=7)
    assert isinstance(result, SkippedTick)
    assert result.tick_index == 7 and result.time_ns == 10 * MS
    assert result.reasons == {"cam": MissReason.MISSING, "task": MissReason.MISSING}
    assert a.counters("cam").misses == {"missing": 1}
    assert a.counters("task").misses == {"missing": 1}
    assert a.frames_produced == 0 and a.ticks_skipped == 1


def test_missing_optional_feature_still_produces_a_frame_and_is_counted():
    a = assembler(StreamSpec("state", 1.0), StreamSpec("task", None, required=False))
    a.add(Sample("state", 0, "s"))
    frame = a.evaluate(10 * MS)
    assert isinstance(frame, Frame)
    assert set(frame.values) == {"state"} and frame.missing == {"task": MissReason.MISSING}
    assert a.counters("task").misses == {"missing": 1}
    a.add(Sample("task", 15 * MS, "pick"))
    later = a.evaluate(10 * NS_PER_S)  # max_age None: a task never goes stale
    assert isinstance(later, SkippedTick)  # ...but state did
    assert later.reasons == {"state": MissReason.STALE}


def test_invalid_newest_message_is_not_replaced_by_an_older_valid_one():
    a = assembler(StreamSpec("state", 1.0))
    a.add(Sample("state", 0, "good"))
    a.add(Sample("state", 10 * MS, None, error="/follower/joint_states: non-finite values: gripper=nan"))
    result = a.evaluate(20 * MS)
    assert isinstance(result, SkippedTick) and result.reasons == {"state": MissReason.INVALID}
    assert "gripper=nan" in result.details["state"]
    assert a.counters("state").invalid_messages == 1 and a.counters("state").misses == {"invalid": 1}
    a.add(Sample("state", 30 * MS, "good again"))
    assert a.evaluate(40 * MS).value("state") == "good again"


def test_out_of_order_and_duplicate_stamps_dropped_and_counted():
    a = assembler(StreamSpec("state", 1.0))
    assert a.add(Sample("state", 100 * MS, "a")) is None
    assert a.add(Sample("state", 50 * MS, "older")) is DropReason.NON_MONOTONIC
    assert a.add(Sample("state", 100 * MS, "same stamp")) is DropReason.NON_MONOTONIC
    assert a.add(Sample("state", 150 * MS, "b")) is None
    counters = a.counters("state")
    assert (counters.received, counters.accepted, counters.dropped) == (4, 2, {"non_monotonic": 2})
    assert a.evaluate(120 * MS).value("state") == "a"  # the dropped message never shows up


def test_ticks_must_increase_and_unknown_streams_rejected():
    a = assembler(StreamSpec("state", 1.0))
    a.evaluate(10 * MS)
    with pytest.raises(ValueError, match="not after the previous tick"):
        a.evaluate(10 * MS)
    with pytest.raises(KeyError, match="unknown stream 'camera'"):
        a.add(Sample("camera", 0, None))
    with pytest.raises(ValueError, match="duplicate stream keys"):
        assembler(StreamSpec("x", 1.0), StreamSpec("x", 2.0))
    with pytest.raises(ValueError, match="max_age_s must be > 0"):
        StreamSpec("x", 0.0)


def test_buffer_overflow_evicts_oldest_and_counts():
    a = assembler(StreamSpec("state", 10.0), capacity=3)
    for i in range(5):
        a.add(Sample("state", i * MS, i))
    assert a.counters("state").dropped == {"overflow": 2}
    assert a.evaluate(10 * MS).value("state") == 4


def test_buffers_are_pruned_as_ticks_advance():
    a = assembler(StreamSpec("state", 1.0), start_ns=0, fps=100)
    for i in range(1000):
        a.add(Sample("state", i * MS, i))
        a.poll(i * MS)
    assert len(a._buffers["state"].samples) <= 11  # only what ticks after the last one can still use


# ---------------------------------------------------------------------------------------------- polling
def test_poll_waits_for_latency_or_for_every_stream_to_pass_the_tick():
    a = assembler(StreamSpec("state", 1.0), StreamSpec("cam", 1.0), latency_s=0.05, start_ns=0, fps=10)
    a.add(Sample("state", 0, "s0"))
    a.add(Sample("cam", 0, "c0"))
    assert [r.tick_index for r in a.poll(now_ns=1 * MS)] == []  # tick 0 not final (nothing after it yet)
    assert [r.tick_index for r in a.poll(now_ns=50 * MS)] == []  # latency not yet strictly passed
    [tick0] = a.poll(now_ns=51 * MS)
    assert isinstance(tick0, Frame) and tick0.tick_index == 0
    a.add(Sample("state", 120 * MS, "s120"))
    assert a.poll(now_ns=None) == []  # cam has not passed t=100ms
    a.add(Sample("cam", 101 * MS, "c101"))
    [tick1] = a.poll(now_ns=None)  # every stream is past t=100 ms: final, no need to wait for latency
    assert tick1.tick_index == 1 and tick1.value("state") == "s0" and tick1.value("cam") == "c0"


def test_late_message_is_counted_and_used_only_by_later_ticks():
    a = assembler(StreamSpec("state", 1.0), latency_s=0.01, start_ns=0, fps=10)
    a.add(Sample("state", 0, "s0"))
    [r0, r1] = a.poll(now_ns=111 * MS)  # ticks at 0 and 100 ms
    assert r1.value("state") == "s0"
    a.add(Sample("state", 90 * MS, "s90"))  # stamped before tick 1 but arrived after it was evaluated
    assert a.counters("state").late == 1
    [r2] = a.poll(now_ns=211 * MS)
    assert r2.value("state") == "s90"


def test_flush_evaluates_remaining_ticks():
    a = assembler(StreamSpec("state", 0.15), start_ns=0, fps=10)
    a.add(Sample("state", 0, "s0"))
    results = a.flush(300 * MS)
    assert [type(r).__name__ for r in results] == ["Frame", "Frame", "SkippedTick", "SkippedTick"]
    assert a.summary()["streams"]["state"]["misses"] == {"stale": 2}
    assert a.summary()["frames_produced"] == 2 and a.summary()["ticks_skipped"] == 2
    with pytest.raises(RuntimeError, match="no FrameClock"):
        assembler(StreamSpec("x", 1.0)).poll(0)


# ----------------------------------------------------------------------------------------- determinism
SPECS = [
    StreamSpec("observation.state", 2 / 30),
    StreamSpec("observation.images.front", 3 / 30),
    StreamSpec("action", 2 / 30),
    StreamSpec("task", None, required=False),
]


def synthetic_stream(seed=1, seconds=4.0):
    """Stamped samples of 3 topics at their own rates with jitter, a camera dropout, a NaN burst, a task."""
    rng = random.Random(seed)
    samples = []
    for key, rate in [("observation.state", 100), ("observation.images.front", 30), ("action", 60)]:
        t = rng.randint(0, 5 * MS)
        while t < seconds * NS_PER_S:
            dropout = key == "observation.images.front" and 1.5 * NS_PER_S < t < 1.8 * NS_PER_S
            if not dropout:
                error = "nan" if key == "action" and 2.5 * NS_PER_S < t < 2.55 * NS_PER_S else None
                samples.append(Sample(key, t, None if error else (key, t), error))
            t += int(NS_PER_S / rate) + rng.randint(-2 * MS, 2 * MS)
    samples.append(Sample("task", 1 * NS_PER_S, "stack the cubes"))
    samples.append(Sample("observation.state", samples[10].stamp_ns if samples[10].key == "observation.state" else 0,
                          "replayed"))  # a non-monotonic duplicate
    return samples


def frame_signature(results):
    out = []
    for r in results:
        if isinstance(r, Frame):
            used = tuple(sorted((k, v.value, v.stamp_ns) for k, v in r.values.items()))
            out.append(("frame", r.tick_index, r.time_ns, used, tuple(sorted(r.missing.items()))))
        else:
            out.append(("skip", r.tick_index, r.time_ns, tuple(sorted(r.reasons.items()))))
    return out


def run_converter(samples, end_ns):
    """Bag converter: samples in stamp order, poll with the watermark, flush at the end."""
    a = FrameAssembler(SPECS, FrameClock(30, 0), latency_s=0.0)
    results = []
    order = sorted(range(len(samples)), key=lambda i: (samples[i].stamp_ns, i))
    for i in order:
        a.add(samples[i])
        results += a.poll(now_ns=samples[i].stamp_ns)
    return results + a.flush(end_ns), a


def run_live(samples, end_ns, seed, latency_s=0.08):
    """Live node: each topic arrives with its own transport delay (order kept within a topic), the timer polls
    at 100 Hz plus jitter; arrival order across topics differs from stamp order."""
    rng = random.Random(seed)
    arrivals = []
    last_arrival = {}
    for i, s in enumerate(samples):
        delay = rng.randint(1 * MS, 60 * MS)
        arrival = max(s.stamp_ns + delay, last_arrival.get(s.key, 0) + 1)
        last_arrival[s.key] = arrival
        arrivals.append((arrival, i))
    arrivals.sort()
    a = FrameAssembler(SPECS, FrameClock(30, 0), latency_s=latency_s)
    results = []
    timer = 0
    for arrival, i in arrivals:
        while timer < arrival:
            results += a.poll(now_ns=timer)
            timer += 10 * MS + rng.randint(0, 3 * MS)
        a.add(samples[i])
    return results + a.flush(end_ns), a


def test_same_stream_gives_identical_frames_live_and_converted():
    samples = synthetic_stream()
    end = 4 * NS_PER_S
    converted, conv = run_converter(samples, end)
    signatures = {frame_signature(converted).__repr__()}
    for seed in (2, 3, 4):
        live, assembler_live = run_live(samples, end, seed)
        assert frame_signature(live) == frame_signature(converted)
        assert assembler_live.summary() == conv.summary() | {"streams": assembler_live.summary()["streams"]}
        assert all(c["late"] == 0 for c in assembler_live.summary()["streams"].values())
        signatures.add(frame_signature(live).__repr__())
    assert len(signatures) == 1
    # The stream is not trivial: frames, camera-dropout skips, invalid actions, the task, the replayed duplicate.
    summary = conv.summary()
    assert summary["frames_produced"] > 80 and summary["ticks_skipped"] > 5
    assert summary["streams"]["observation.images.front"]["misses"].get("stale", 0) >= 5
    assert summary["streams"]["action"]["misses"].get("invalid", 0) >= 1
    assert summary["streams"]["observation.state"]["dropped"] == {"non_monotonic": 1}
    assert summary["streams"]["task"]["misses"]["missing"] == 30  # ticks in the first second (t < 1 s)
    # Explicit evaluate() at each frame time (the converter's other way) agrees as well.
    a = FrameAssembler(SPECS, latency_s=0.0)
    clock = FrameClock(30, 0)
    explicit = []
    stamp_order = sorted(samples, key=lambda s: s.stamp_ns)
    j = 0
    while clock.next_time_ns <= end:
        index, t = clock.advance()
        while j < len(stamp_order) and stamp_order[j].stamp_ns <= t:
            a.add(stamp_order[j])
            j += 1
        explicit.append(a.evaluate(t, index))
    assert frame_signature(explicit) == frame_signature(converted)


def test_too_small_latency_makes_live_differ_and_says_so():
    samples = synthetic_stream()
    converted, _ = run_converter(samples, 4 * NS_PER_S)
    live, a = run_live(samples, 4 * NS_PER_S, seed=2, latency_s=0.0)
    assert frame_signature(live) != frame_signature(converted)
    assert sum(c["late"] for c in a.summary()["streams"].values()) > 0


def test_clock_mismatch_is_explained_in_the_details():
    a = assembler(StreamSpec("cam", 0.1), StreamSpec("state", 0.1))
    wall = 1_700_000_000 * NS_PER_S  # a camera stamping with the wall clock while the recorder runs on sim time
    a.add(Sample("cam", wall, "img"))
    a.add(Sample("state", 5 * NS_PER_S, "s"))
    result = a.evaluate(5 * NS_PER_S)
    assert result.reasons == {"cam": MissReason.MISSING}
    assert "stamped 1699999995.000 s after it" in result.details["cam"] and "use_sim_time" in result.details["cam"]
    b = assembler(StreamSpec("state", 0.1))
    b.add(Sample("state", 5 * NS_PER_S, "s"))
    result = b.evaluate(wall)
    assert result.reasons == {"state": MissReason.STALE} and "stamp: receive" in result.details["state"]
    c = assembler(StreamSpec("state", 0.1))
    c.add(Sample("state", 0, "s"))
    assert "clocks differ" not in c.evaluate(NS_PER_S).details["state"]  # an ordinary 1 s dropout: no hint
