"""A Mixture-of-Experts GGUF made from a dense Llama-family one (sparse upcycling), for
tests: no MoE GGUF installs from any package registry.

Each layer's feed-forward weights are copied into ``experts`` experts (the quantized bytes
as they are, so the experts are exactly as quantized as the dense model), and a router
of zeros is added: every expert scores the same, ``used`` of them are picked, their
weights are normalised to sum to 1, and as the experts are identical the layer's output
is the dense layer's. llama.cpp runs it through its MoE path (``n_expert`` > 0: router,
top-k, expert matrix products), and it must answer token for token like the dense model.

Needs the ``gguf`` package (a test dependency).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["upcycle"]

_FFN = ("ffn_gate", "ffn_up", "ffn_down")


def upcycle(dense: Path, out: Path, *, experts: int = 4, used: int = 2) -> Path:
    """Write ``out``: ``dense`` (a ``llama`` architecture GGUF) with ``experts`` copies of
    each feed-forward block and a zero router choosing ``used`` of them."""
    import gguf

    reader = gguf.GGUFReader(dense)
    arch = str(reader.fields["general.architecture"].contents())
    if arch != "llama":
        raise ValueError(f"{dense}: architecture {arch!r}, upcycling needs 'llama'")
    writer = gguf.GGUFWriter(out, arch)
    for field in reader.fields.values():
        if field.name == "general.architecture" or field.name.startswith("GGUF."):
            continue  # the writer writes these itself
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), kind, sub_type=sub)
    writer.add_expert_count(experts)
    writer.add_expert_used_count(used)
    writer.add_expert_weights_norm(True)
    n_embd = int(reader.fields[f"{arch}.embedding_length"].contents())
    quant = gguf.GGMLQuantizationType
    tensors: list[tuple[str, Any, Any]] = []
    for t in reader.tensors:
        block, _, rest = t.name.rpartition(".ffn_")
        kind_name = "ffn_" + rest.removesuffix(".weight")
        if block and kind_name in _FFN and rest.endswith("weight"):
            stacked = np.stack([t.data] * experts)
            tensors.append((f"{block}.{kind_name}_exps.weight", stacked, t.tensor_type))
            if kind_name == "ffn_gate":
                router = np.zeros((experts, n_embd), dtype=np.float32)
                tensors.append((f"{block}.ffn_gate_inp.weight", router, quant.F32))
        else:
            tensors.append((t.name, t.data, t.tensor_type))
    try:
        for name, data, qtype in tensors:
            raw = None if qtype in (quant.F32, quant.F16) else qtype
            writer.add_tensor(name, np.ascontiguousarray(data), raw_dtype=raw)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()
    return out
