"""Keep video encoding off real-time scheduling.

SVT-AV1 (upstream's default video codec) puts the thread that opens an encoder on SCHED_FIFO priority 99 when the
process runs as root, as it does in a Docker container, and the ~20 encoder threads it starts from there inherit
it. Real-time encoding threads on a small robot computer starve the control loop, the DDS threads and every other
process (a fresh-clone test run hung this way on two cores). `keeping_thread_scheduling` undoes the switch.
Linux only; elsewhere it just makes the call.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

_REAL_TIME = (getattr(os, "SCHED_FIFO", -1), getattr(os, "SCHED_RR", -1))


def thread_schedules() -> dict[int, tuple[int, int]]:
    """(policy, priority) of every thread of this process, by thread id."""
    schedules = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            schedules[int(tid)] = (os.sched_getscheduler(int(tid)), os.sched_getparam(int(tid)).sched_priority)
        except OSError:  # the thread ended meanwhile
            pass
    return schedules


def real_time_threads() -> dict[int, tuple[int, int]]:
    """The threads of this process on SCHED_FIFO or SCHED_RR, with their (policy, priority)."""
    return {tid: schedule for tid, schedule in thread_schedules().items() if schedule[0] in _REAL_TIME}


class _SchedParam(ctypes.Structure):
    _fields_ = [("sched_priority", ctypes.c_int)]


@functools.cache
def _libc() -> Any:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.pthread_self.restype = ctypes.c_void_p
    libc.pthread_setschedparam.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(_SchedParam)]
    libc.pthread_getschedparam.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(_SchedParam)]
    return libc


def set_own_scheduling(policy: int, priority: int) -> None:
    """Set the calling thread's scheduling through pthread_setschedparam, not the bare system call: glibc keeps the
    policy it last set in the thread's descriptor and hands it to every thread this one starts later (Fast DDS then
    applies it to its threads), so a reset behind glibc's back leaves the next threads real-time."""
    libc = _libc()
    err = libc.pthread_setschedparam(libc.pthread_self(), policy, ctypes.byref(_SchedParam(priority)))
    if err:
        raise OSError(err, os.strerror(err))


def set_thread_scheduling(tid: int, policy: int, priority: int) -> None:
    """Set a thread's scheduling: the calling thread's through glibc (see `set_own_scheduling`), another's with the
    system call (glibc's record of it only matters for threads it starts itself)."""
    if tid == threading.get_native_id():
        set_own_scheduling(policy, priority)
    else:
        os.sched_setscheduler(tid, policy, os.sched_param(priority))


def own_scheduling_as_glibc_records_it() -> tuple[int, int]:
    """(policy, priority) of the calling thread as glibc reports it (what the threads it starts are given)."""
    libc = _libc()
    policy, param = ctypes.c_int(), _SchedParam()
    err = libc.pthread_getschedparam(libc.pthread_self(), ctypes.byref(policy), ctypes.byref(param))
    if err:
        raise OSError(err, os.strerror(err))
    return policy.value, param.sched_priority


def keeping_thread_scheduling(call: Callable[..., Any], *args: Any) -> Any:
    """Run `call` and undo any switch to real-time scheduling it made in this process's threads: the calling thread
    and the threads started meanwhile get the scheduling the calling thread had before (what they would have
    inherited). A thread that was real-time before the call is left as it was."""
    if not hasattr(os, "sched_getscheduler") or not os.path.isdir("/proc/self/task"):
        return call(*args)
    before = thread_schedules()
    caller = before[threading.get_native_id()]
    try:
        return call(*args)
    finally:
        for tid, schedule in real_time_threads().items():
            if schedule != before.get(tid, caller):
                try:
                    set_thread_scheduling(tid, *caller)
                except OSError as e:
                    log.warning("video encoder thread %d left at real-time priority: %s", tid, e)
