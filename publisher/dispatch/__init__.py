"""Durable fan-out: plan who gets a warning version, then deliver it through the channels.

publish ──► warnings events stream ──► planner ──► dispatch queue (segments of addresses)
                                                        │ consumer group, any number of workers
                                                        ▼
                                          channel.send ──► per-recipient state, stats
                                                        │ temporary failure
                                                        ▼
                                          retry schedule ──► (after the last try) dead letters
"""
