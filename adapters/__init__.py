"""NLE targets for write-back, one OTIO write adapter per module: `resolve`, `premiere`, `fcp7`,
`aaf`, `otioz`. `otio_foley.writeback.TARGETS` maps target names to them; `plugin_manifest.json`
registers them with OTIO (entry point `opentimelineio.plugins`), without file suffixes.

Installed as `otio_foley.adapters`.
"""
