"""The built-in ``sandbox`` app: what the running sandbox was generated from, for other processes.

End-to-end tests running in another process read the organisation's ground truth and Sheet tabs from
here instead of regenerating it (and risking a different `end` date).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sandbox.app import App, HTTPAbort, Request
from sandbox.clock import SimClock
from sandbox.export import meta, to_jsonable
from sandbox.registry import register_app

if TYPE_CHECKING:
    from sandbox.org import Organisation


@register_app("sandbox")
def build(org: Organisation, clock: SimClock) -> App:
    app = App("sandbox", clock=clock)

    @app.get("/org")
    def org_meta(request: Request) -> dict[str, Any]:
        return meta(org)

    @app.get("/ground-truth")
    def ground_truth(request: Request) -> dict[str, Any]:
        return {"meta": meta(org), "tables": to_jsonable(org.ground_truth())}

    @app.get("/sheet/{tab}")
    def sheet_tab(request: Request) -> dict[str, Any]:
        tabs = org.sheet_tabs()
        tab = request.path_params["tab"]
        if tab not in tabs:
            raise HTTPAbort(404, f"no sheet tab {tab!r}; tabs: {sorted(tabs)}")
        return {"tab": tab, "rows": tabs[tab]}

    return app
