"""SelVA / MMAudio networks, the flow-matching sampler, the audio back-end, and checkpoint loading.

Installed as `otio_foley.models`. Networks are plain `nn.Module`s with config dataclasses and a factory
per variant; samplers are stateless functions; `pipeline` composes them for the render code.
"""
