"""schemathesis hooks for R5 (loaded through SCHEMATHESIS_HOOKS).

A random `user_id` almost always names somebody else's account, so the
fuzzer would mostly see 403 and 404 and never reach the code behind them.
These hooks let each generated `user_id` (in the path or at the top of a
JSON body) be either the authenticated user's own id, given in
DRILL_USER_ID, or the generated value; Hypothesis explores both, and
shrinks failures towards the caller's own id.
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis
from hypothesis import strategies as st

OWN_USER_ID = int(os.environ["DRILL_USER_ID"])


@schemathesis.hook
def flatmap_path_parameters(context, path_parameters: dict[str, Any]):
    # Negative cases may break the parameters' very shape; leave those be.
    if not isinstance(path_parameters, dict) or "user_id" not in path_parameters:
        return st.just(path_parameters)
    return st.sampled_from(
        [{**path_parameters, "user_id": OWN_USER_ID}, path_parameters]
    )


@schemathesis.hook
def flatmap_body(context, body: Any):
    if not isinstance(body, dict) or "user_id" not in body:
        return st.just(body)
    return st.sampled_from([{**body, "user_id": OWN_USER_ID}, body])
