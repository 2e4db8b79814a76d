#!/bin/sh
# Entrypoint of the lab LiteLLM image, at the path of the official image's
# (docker/prod_entrypoint.sh under /app): the arguments are the `litellm`
# proxy's own (--config, --port, --num_workers, ...).
exec litellm "$@"
