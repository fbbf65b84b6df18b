"""API surfaces: one module per API, each an adapter (its request -> server.plan.Plan) and two
folds over the pipeline's neutral events (its SSE stream, its JSON body). ``server.respond``
runs any of them: admission, the first event before the 200, disconnects and cleanup."""
