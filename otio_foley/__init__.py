"""otio-foley: AI Foley for editors.

Data flow (one module per step): edit -> shots -> jobs -> features -> audio -> stems -> timeline.
"""
__version__ = "0.1.0"
