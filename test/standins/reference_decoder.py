"""Independent PyTorch decoder with Hugging Face semantics (modeling_qwen3 / qwen2 / llama, eager attention),
used to check the stand-in ONNX decoders numerically. It reads the model folder's config.json, the weights
under their HF names from a safetensors file, and a case JSON; it writes logits and present K/V per step.

    /usr/bin/python3 reference_decoder.py CASES.json

CASES.json: a list of {"config": path, "weights": path, "flavour": "fp32"|"fp16"|"q8", "out": path,
            "steps": [{"input_ids": [[..]], "attention_mask": [[..]], "position_ids": [[..]]}, ...]}
Each step continues from the previous step's present K/V (the first starts empty).

fp16 and q8 are emulated on top of the same float32 math: fp16 rounds weights, MatMul inputs/outputs, the
embedding rows, stored K/V and logits to float16; q8 quantizes weights to symmetric per-tensor int8 and each
MatMul input with ONNX DynamicQuantizeLinear (uint8, per tensor), multiplying exactly in float64.
Written from the HF formulas and the ONNX operator spec, not from the TypeScript generator.
"""
import json
import math
import struct
import sys

import torch

torch.set_grad_enabled(False)


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        assert meta["dtype"] == "F32", (name, meta["dtype"])
        a, b = meta["data_offsets"]
        t = torch.frombuffer(bytearray(data[a:b]), dtype=torch.float32)
        out[name] = t.reshape(meta["shape"]) if meta["shape"] else t.reshape(())
    return out


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        b = t.contiguous().to(torch.float32).numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def half(x):
    return x.to(torch.float16).to(torch.float32)


def inv_freq_of(cfg):
    dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    base = cfg["rope_theta"]
    inv = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    rs = cfg.get("rope_scaling")
    if rs and rs.get("rope_type") == "llama3":
        factor, lo, hi, old = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"], rs["original_max_position_embeddings"]
        lo_wl, hi_wl = old / lo, old / hi
        wavelen = 2 * math.pi / inv
        scaled = torch.where(wavelen > lo_wl, inv / factor, inv)
        smooth = (old / wavelen - lo) / (hi - lo)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < hi_wl) * ~(wavelen > lo_wl)
        inv = torch.where(medium, smoothed, scaled)
    elif rs:
        raise ValueError(f"unsupported rope_scaling {rs}")
    return inv


def dynamic_quantize(x):
    """ONNX DynamicQuantizeLinear in float32: uint8, per tensor; returns (q - zero_point) as float64 and the scale."""
    x_min = torch.clamp(x.min(), max=0.0)
    x_max = torch.clamp(x.max(), min=0.0)
    scale = (x_max - x_min) / 255.0
    zp = torch.clamp(torch.round(-x_min / scale), 0, 255)
    q = torch.clamp(torch.round(x / scale) + zp, 0, 255)
    return (q - zp).to(torch.float64), scale


def quantize_weight(w):
    """Symmetric per-tensor int8 (onnxruntime quantize_dynamic, QInt8): scale = max|w| / 127, zero point 0."""
    scale = (w.abs().max() / 127.0).to(torch.float32)
    return torch.clamp(torch.round(w / scale), -127, 127).to(torch.float64), scale


class Model:
    def __init__(self, cfg, weights, flavour):
        self.cfg, self.flavour = cfg, flavour
        self.w = {k: half(v) for k, v in weights.items()} if flavour == "fp16" else weights
        self.q = {}
        self.heads = cfg["num_attention_heads"]
        self.kv_heads = cfg["num_key_value_heads"]
        self.head_dim = cfg.get("head_dim") or cfg["hidden_size"] // self.heads
        self.eps = cfg["rms_norm_eps"]
        self.inv_freq = inv_freq_of(cfg)
        self.qk_norm = cfg["model_type"] == "qwen3"
        self.qkv_bias = cfg["model_type"] == "qwen2"

    def matmul(self, x, name):
        """x @ W.T for an HF Linear weight [out, in] (also the tied lm_head with the embedding)."""
        w = self.w[name]
        if self.flavour == "fp32":
            return x @ w.T
        if self.flavour == "fp16":
            return half(half(x) @ w.T)
        if name not in self.q:
            self.q[name] = quantize_weight(w)
        wq, ws = self.q[name]
        xq, xs = dynamic_quantize(x)
        return ((xq @ wq.T).to(torch.float32)) * (xs * ws)

    def linear(self, x, name, bias):
        y = self.matmul(x, f"{name}.weight")
        return y + self.w[f"{name}.bias"] if bias else y

    def rms(self, x, name):
        var = x.pow(2).mean(-1, keepdim=True)
        return self.w[name] * (x * torch.rsqrt(var + self.eps))

    def embed(self, ids):
        e = self.w["model.embed_tokens.weight"]
        if self.flavour == "q8":
            if "embed" not in self.q:
                self.q["embed"] = quantize_weight(e)
            eq, es = self.q["embed"]
            return eq[ids].to(torch.float32) * es
        return e[ids]

    def forward(self, input_ids, attention_mask, position_ids, past):
        B, S = input_ids.shape
        T = attention_mask.shape[1]
        P = T - S
        x = self.embed(input_ids)
        freqs = position_ids[:, :, None].float() * self.inv_freq[None, None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos()[:, None], emb.sin()[:, None]
        half_d = self.head_dim // 2

        def rope(t):
            rot = torch.cat((-t[..., half_d:], t[..., :half_d]), dim=-1)
            return t * cos + rot * sin

        q_idx = torch.arange(P, T)[:, None]
        k_idx = torch.arange(T)[None, :]
        allowed = (k_idx <= q_idx)[None, None] & (attention_mask[:, None, None, :] != 0)
        mask = torch.where(allowed, torch.tensor(0.0), torch.tensor(torch.finfo(torch.float32).min))
        rep = self.heads // self.kv_heads
        present = []
        for i in range(self.cfg["num_hidden_layers"]):
            p = f"model.layers.{i}"
            h = self.rms(x, f"{p}.input_layernorm.weight")
            q = self.linear(h, f"{p}.self_attn.q_proj", self.qkv_bias).view(B, S, self.heads, self.head_dim)
            k = self.linear(h, f"{p}.self_attn.k_proj", self.qkv_bias).view(B, S, self.kv_heads, self.head_dim)
            v = self.linear(h, f"{p}.self_attn.v_proj", self.qkv_bias).view(B, S, self.kv_heads, self.head_dim)
            if self.qk_norm:
                q = self.rms(q, f"{p}.self_attn.q_norm.weight")
                k = self.rms(k, f"{p}.self_attn.k_norm.weight")
            q, k, v = rope(q.transpose(1, 2)), rope(k.transpose(1, 2)), v.transpose(1, 2)
            if self.flavour == "fp16":
                k, v = half(k), half(v)
            pk, pv = past[i] if past else (k[:, :, :0], v[:, :, :0])
            k, v = torch.cat((pk, k), dim=2), torch.cat((pv, v), dim=2)
            present.append((k, v))
            kr = k[:, :, None].expand(B, self.kv_heads, rep, T, self.head_dim).reshape(B, self.heads, T, self.head_dim)
            vr = v[:, :, None].expand(B, self.kv_heads, rep, T, self.head_dim).reshape(B, self.heads, T, self.head_dim)
            scores = (q @ kr.transpose(2, 3)) * (self.head_dim ** -0.5) + mask
            ctx = torch.softmax(scores, dim=-1) @ vr
            ctx = ctx.transpose(1, 2).reshape(B, S, self.heads * self.head_dim)
            x = x + self.linear(ctx, f"{p}.self_attn.o_proj", False)
            h2 = self.rms(x, f"{p}.post_attention_layernorm.weight")
            g = self.linear(h2, f"{p}.mlp.gate_proj", False)
            u = self.linear(h2, f"{p}.mlp.up_proj", False)
            x = x + self.linear(torch.nn.functional.silu(g) * u, f"{p}.mlp.down_proj", False)
        x = self.rms(x, "model.norm.weight")
        logits = self.matmul(x, "model.embed_tokens.weight")
        return (half(logits) if self.flavour == "fp16" else logits), present


def run_case(case):
    cfg = json.load(open(case["config"]))
    model = Model(cfg, read_safetensors(case["weights"]), case["flavour"])
    out, past = {}, None
    for s, step in enumerate(case["steps"]):
        t = {k: torch.tensor(step[k], dtype=torch.int64) for k in ("input_ids", "attention_mask", "position_ids")}
        logits, past = model.forward(t["input_ids"], t["attention_mask"], t["position_ids"], past)
        out[f"step{s}.logits"] = logits
        for i, (k, v) in enumerate(past):
            out[f"step{s}.present.{i}.key"] = k
            out[f"step{s}.present.{i}.value"] = v
    write_safetensors(case["out"], out)


def main():
    for case in json.load(open(sys.argv[1])):
        run_case(case)


if __name__ == "__main__":
    main()
