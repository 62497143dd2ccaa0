"""schemathesis hooks for e2e_schemathesis.rs (loaded through SCHEMATHESIS_HOOKS).

Code uploads (`application/wasm`) get bodies schemathesis cannot make by itself: a real
component (the path in ARCUS_HOOK_WASM), a truncated one, a bare module header, and
random bytes. Trigger creation is kept to cron and webhook configs, so generated
requests never make the node dial a broker at a generated address.
"""
import os

import schemathesis
from hypothesis import strategies as st

with open(os.environ["ARCUS_HOOK_WASM"], "rb") as f:
    _component = f.read()

schemathesis.openapi.media_type(
    "application/wasm",
    st.sampled_from([_component, _component[: len(_component) // 2], b"\0asm\x01\0\0\0", b""])
    | st.binary(max_size=512),
)


@schemathesis.hook
def filter_body(ctx, body):
    if "/triggers" in ctx.operation.path:
        config = body.get("config") if isinstance(body, dict) else None
        return not isinstance(config, dict) or config.get("type") in ("cron", "webhook")
    return True
