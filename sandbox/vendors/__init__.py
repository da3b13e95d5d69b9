"""Vendor simulators. Each module (or sub-package) here registers its app factory on import:

    from sandbox.registry import register_app

    @register_app("cursor")
    def build(org: Organisation, clock: SimClock) -> App: ...

`python -m sandbox serve` imports every module of this package and starts every registered app.
"""
