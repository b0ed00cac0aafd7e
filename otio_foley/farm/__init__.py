"""Render farms and scale (docs/farm.md).

partition: which clips `render --shard K/N` renders; locks: job locks on shared storage; store: job
records and the claim / generate / write loop every render runs; assemble: shard manifests and
`otio-foley assemble`; batching: `--batch-size`; ray_executor: `--executor ray`.
"""
