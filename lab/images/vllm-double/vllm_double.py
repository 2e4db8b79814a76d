"""vllm-double's entry point: `vllm serve ...` in the image runs this file with vLLM's flags.

A TEST DOUBLE of vLLM's OpenAI-compatible server; the server is the package
vllmdouble next to this file (see its docstring for what each module does).
Run it without docker:

    python3 vllm_double.py serve --model m --served-model-name NAME --host 127.0.0.1 --port 8000
"""

from __future__ import annotations

import sys

from vllmdouble.main import main

if __name__ == "__main__":
    sys.exit(main())
