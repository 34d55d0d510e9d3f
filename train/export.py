"""Write a transformers.js model folder: config.json, generation_config.json, tokenizer.json,
tokenizer_config.json, model.safetensors (HF names, for PyTorch reloads) and onnx/model.onnx
(opset 17, TorchScript exporter, onnx-community I/O names, batch axis named `batch_size`)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import List

import torch

import st
from bpe import BPETokenizer
from qwen3 import Qwen3Config, Qwen3ForCausalLM


class OnnxWrapper(torch.nn.Module):
    def __init__(self, model: Qwen3ForCausalLM):
        super().__init__()
        self.m = model

    def forward(self, input_ids, attention_mask, position_ids, *past_flat):
        past = [(past_flat[2 * i], past_flat[2 * i + 1]) for i in range(len(past_flat) // 2)]
        logits, present = self.m(input_ids, attention_mask, position_ids, past)
        out: List[torch.Tensor] = [logits]
        for k, v in present:
            out += [k, v]
        return tuple(out)


def export_onnx(model: Qwen3ForCausalLM, path: Path) -> None:
    c = model.config
    L = c.num_hidden_layers
    b, s, p = 2, 3, 2
    ids = torch.randint(4, c.vocab_size, (b, s))
    mask = torch.ones(b, p + s, dtype=torch.long)
    pos = torch.arange(p, p + s).unsqueeze(0).expand(b, s).contiguous()
    past = []
    for _ in range(L):
        past += [torch.randn(b, c.num_key_value_heads, p, c.head_dim), torch.randn(b, c.num_key_value_heads, p, c.head_dim)]
    in_names = ["input_ids", "attention_mask", "position_ids"]
    out_names = ["logits"]
    dyn = {"input_ids": {0: "batch_size", 1: "sequence_length"},
           "attention_mask": {0: "batch_size", 1: "total_sequence_length"},
           "position_ids": {0: "batch_size", 1: "sequence_length"},
           "logits": {0: "batch_size", 1: "sequence_length"}}
    for i in range(L):
        for kv in ("key", "value"):
            n_in, n_out = f"past_key_values.{i}.{kv}", f"present.{i}.{kv}"
            in_names.append(n_in)
            out_names.append(n_out)
            dyn[n_in] = {0: "batch_size", 2: "past_sequence_length"}
            dyn[n_out] = {0: "batch_size", 2: "total_sequence_length"}
    path.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
    with torch.no_grad():
        torch.onnx.export(OnnxWrapper(model), (ids, mask, pos, *past), str(path), input_names=in_names,
                          output_names=out_names, dynamic_axes=dyn, opset_version=17, do_constant_folding=True)
    import onnx
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)


def save_model_folder(model: Qwen3ForCausalLM, tok: BPETokenizer, out: Path, extra: dict = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    eos, pad = tok.token_id("<|im_end|>"), tok.token_id("<|endoftext|>")
    cfg = model.config.hf_config(bos=pad, eos=eos, pad=pad)
    if extra:
        cfg["c2c_web"] = extra
    (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    (out / "generation_config.json").write_text(json.dumps(
        {"bos_token_id": pad, "eos_token_id": [eos, pad], "pad_token_id": pad, "do_sample": False}, indent=2) + "\n")
    (out / "tokenizer.json").write_text(json.dumps(tok.to_hf_json(), ensure_ascii=False) + "\n")
    (out / "tokenizer_config.json").write_text(
        json.dumps(tok.tokenizer_config(model.config.max_position_embeddings), indent=2) + "\n")
    sd = {k: v for k, v in model.state_dict().items() if k != "lm_head.weight"}  # tied: HF drops it too
    st.save(sd, out / "model.safetensors", {"format": "pt"})
    export_onnx(model, out / "onnx" / "model.onnx")


def load_model_folder(folder: Path):
    cfg = Qwen3Config.load(folder / "config.json")
    model = Qwen3ForCausalLM(cfg)
    sd = st.load(folder / "model.safetensors")
    sd["lm_head.weight"] = sd["model.embed_tokens.weight"]
    model.load_state_dict(sd)
    model.eval()
    tok = BPETokenizer.from_hf_json(json.loads((folder / "tokenizer.json").read_text()))
    return model, tok
