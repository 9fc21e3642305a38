"""Experiment (not committed): the embedded gateway with its trivial sync FastAPI dependencies made async."""
import sys

import uvicorn
from fastapi import Request

from gateway import deps


async def _pipeline(request: Request):  # type: ignore[no-untyped-def]
    return request.app.state.pipeline


async def _settings(request: Request):  # type: ignore[no-untyped-def]
    return request.app.state.settings


async def _components(request: Request):  # type: ignore[no-untyped-def]
    return request.app.state.components


SWAP = {deps._pipeline: _pipeline, deps._settings: _settings, deps._components: _components}


def patch(dependant) -> int:  # type: ignore[no-untyped-def]
    n = 0
    for sub in dependant.dependencies:
        if sub.call in SWAP:
            sub.call = SWAP[sub.call]
            for attr in list(vars(sub)):
                if attr.startswith("is_") or attr.startswith("_is"):
                    vars(sub).pop(attr, None)  # drop cached properties computed from the old call
            n += 1
        n += patch(sub)
    return n


patched = 0
for alias in (deps.PipelineDep, deps.SettingsDep, deps.ComponentsDep):
    marker = alias.__metadata__[0]
    object.__setattr__(marker, "dependency", SWAP[marker.dependency])
    patched += 1
from gateway.app import create_app  # noqa: E402  (routes read the patched markers when they are declared)
from gateway.settings import GatewaySettings  # noqa: E402

app = create_app(GatewaySettings(port=int(sys.argv[1])))
print("patched", patched, file=sys.stderr, flush=True)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
