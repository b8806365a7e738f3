"""Fault suite: real `warncast serve` / `warncast worker` processes, a real redis-server (standalone
or a Sentinel set) and the Twilio stand-in, with processes killed, stopped and restarted under load.

`processes.py` starts and stops the processes, `load.py` generates the load and counts the answers,
`scenarios.py` runs each scenario and returns its figures; the tests (`test_faults.py`) and
`benchmarks/faults.py` run the same scenarios at two sizes.
"""
