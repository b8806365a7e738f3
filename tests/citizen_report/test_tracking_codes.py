"""Tracking codes: 16 digits of Crockford's base 32 from the system's random source, never repeated
by a forked child."""

from __future__ import annotations

import os
from collections import Counter

from citizen_report.model import TRACKING_LENGTH, new_tracking_code, normalise_tracking_code


def test_codes_are_unique_well_formed_and_use_every_digit_evenly():
    codes = [new_tracking_code() for _ in range(20_000)]
    assert len(set(codes)) == len(codes)
    assert all(len(code) == TRACKING_LENGTH and normalise_tracking_code(code) == code for code in codes)
    digits = Counter("".join(codes))
    assert len(digits) == 32
    expected = len(codes) * TRACKING_LENGTH / 32
    assert all(abs(count - expected) < expected * 0.1 for count in digits.values()), digits


def test_a_forked_child_does_not_hand_out_the_codes_its_parent_will():
    new_tracking_code()  # the parent now holds random bytes for its next codes
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, "".join(new_tracking_code() for _ in range(8)).encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 1024).decode()
    os.close(read)
    os.waitpid(pid, 0)
    parent = "".join(new_tracking_code() for _ in range(8))
    assert len(child) == 8 * TRACKING_LENGTH and child != parent
