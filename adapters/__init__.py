"""NLE targets: write the foley timeline for Resolve, Premiere, FCP7 XML, Avid AAF, and BWF stems.

Installed as `otio_foley.adapters`.
"""
