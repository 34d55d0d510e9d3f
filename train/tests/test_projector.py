"""Unit tests for train/c2c: official key set and shapes, eval forward vs a hand-written numpy forward,
closed gates, the temperature schedule, safetensors and fuser save/load round trips, and the golden fixtures.

Run: /usr/bin/python3 -m unittest discover -s train/tests
"""
import json
import math
import os
import sys
import tempfile
import unittest

import numpy as np
import torch

TRAIN = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TRAIN)
from c2c.fuser_io import load_fuser, save_fuser  # noqa: E402
from c2c.projector import C2CProjector, terminal_layer_map  # noqa: E402
from c2c.safetensors_io import (f32_to_bf16_bits, read_safetensors, round_to_bf16,  # noqa: E402
                                write_safetensors)

FIXTURES = os.path.join(os.path.dirname(TRAIN), "test", "fixtures", "fuser")


def np_forward_path(sd, p, s, r, hr, dr, num_blocks_proj, eps=1e-6):
    """Per-token numpy forward of one path from the written-out math. s: [Hs, N, Ds], r: [Hr, N, Dr]."""
    g = lambda k: sd[f"{p}_{k}"].detach().double().numpy()  # noqa: E731
    erf = np.vectorize(math.erf)

    def ffn(x, prefix):
        n = x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * g(f"{prefix}.norm.weight")
        u = n @ g(f"{prefix}.w1.weight").T
        return x + (0.5 * u * (1 + erf(u / math.sqrt(2)))) @ g(f"{prefix}.w2.weight").T

    n_tok = r.shape[1]
    sf = s.transpose(1, 0, 2).reshape(n_tok, -1)
    rf = r.transpose(1, 0, 2).reshape(n_tok, -1)
    h0 = np.concatenate([sf, rf], axis=-1) @ g("in.weight").T + g("in.bias")
    h1 = ffn(h0, "mlp1.blocks.0")
    h2 = h1
    for b in range(num_blocks_proj):
        h2 = ffn(h2, f"proj_mlp2.blocks.{b}")
    proj = h2 @ g("proj_out.weight").T + g("proj_out.bias")
    z = ffn(h1, "scalar_mlp2.blocks.0") @ g("scalar_head.weight").T + g("scalar_head.bias")
    w = 1 / (1 + np.exp(-z))
    gate = 1.0 if float(sd[f"{p}_gate_logit"]) > 0 else 0.0
    out = rf + gate * np.repeat(w, dr, axis=-1) * proj
    return out.reshape(n_tok, hr, dr).transpose(1, 0, 2)


def make_projector(seed=0, num_layers=3, sh=2, sd=8, rh=4, rd=4, hidden=16, inter=24):
    torch.manual_seed(seed)
    p = C2CProjector(source_dim=sd, target_dim=rd, source_num_heads=sh, target_num_heads=rh, hidden_dim=hidden,
                     intermediate_dim=inter, num_layers=num_layers, dropout=0.1)
    with torch.no_grad():
        for name, param in p.named_parameters():
            if name.endswith("norm.weight"):
                param.copy_(1 + 0.3 * torch.randn_like(param))
        p.key_gate_logit.fill_(0.5)
        p.value_gate_logit.fill_(0.5)
    return p.eval()


# Upstream's C2CProjector state dict, key by key in its construction order, for source 2 heads x 8, target
# 4 heads x 4 (in_dim = out_dim = 16), hidden 16, intermediate 24, num_layers 4. Written out by hand from
# thu-nics/C2C rosetta/model/projector.py (c2c-reference §1.2), not derived from train/c2c. torch's state_dict
# lists a module's own parameters and buffers before its children, so the gates and the buffer come first.
H, I, HR, IN, OUT = 16, 24, 4, 16, 16
UPSTREAM_NL4 = [
    ("key_gate_logit", ()), ("value_gate_logit", ()),
    ("gate_temperature", ()),
    ("key_in.weight", (H, IN + OUT)), ("key_in.bias", (H,)),
    ("value_in.weight", (H, IN + OUT)), ("value_in.bias", (H,)),
    ("key_mlp1.blocks.0.norm.weight", (H,)), ("key_mlp1.blocks.0.w1.weight", (I, H)),
    ("key_mlp1.blocks.0.w2.weight", (H, I)),
    ("value_mlp1.blocks.0.norm.weight", (H,)), ("value_mlp1.blocks.0.w1.weight", (I, H)),
    ("value_mlp1.blocks.0.w2.weight", (H, I)),
    ("key_scalar_mlp2.blocks.0.norm.weight", (H,)), ("key_scalar_mlp2.blocks.0.w1.weight", (H, H)),
    ("key_scalar_mlp2.blocks.0.w2.weight", (H, H)),
    ("value_scalar_mlp2.blocks.0.norm.weight", (H,)), ("value_scalar_mlp2.blocks.0.w1.weight", (H, H)),
    ("value_scalar_mlp2.blocks.0.w2.weight", (H, H)),
    ("key_scalar_head.weight", (HR, H)), ("key_scalar_head.bias", (HR,)),
    ("value_scalar_head.weight", (HR, H)), ("value_scalar_head.bias", (HR,)),
    ("key_proj_mlp2.blocks.0.norm.weight", (H,)), ("key_proj_mlp2.blocks.0.w1.weight", (I, H)),
    ("key_proj_mlp2.blocks.0.w2.weight", (H, I)),
    ("key_proj_mlp2.blocks.1.norm.weight", (H,)), ("key_proj_mlp2.blocks.1.w1.weight", (I, H)),
    ("key_proj_mlp2.blocks.1.w2.weight", (H, I)),
    ("value_proj_mlp2.blocks.0.norm.weight", (H,)), ("value_proj_mlp2.blocks.0.w1.weight", (I, H)),
    ("value_proj_mlp2.blocks.0.w2.weight", (H, I)),
    ("value_proj_mlp2.blocks.1.norm.weight", (H,)), ("value_proj_mlp2.blocks.1.w1.weight", (I, H)),
    ("value_proj_mlp2.blocks.1.w2.weight", (H, I)),
    ("key_proj_out.weight", (OUT, H)), ("key_proj_out.bias", (OUT,)),
    ("value_proj_out.weight", (OUT, H)), ("value_proj_out.bias", (OUT,)),
]


def upstream_keys(num_layers):
    """UPSTREAM_NL4 for num_layers 3 (one proj_mlp2 block) or 4 (two)."""
    assert num_layers in (3, 4)
    return [(k, s) for k, s in UPSTREAM_NL4 if num_layers == 4 or "proj_mlp2.blocks.1." not in k]


class TestProjector(unittest.TestCase):
    def test_state_dict_is_upstreams(self):
        for nl in (3, 4):
            p = make_projector(num_layers=nl, sh=2, sd=8, rh=4, rd=4, hidden=16, inter=24)
            got = [(k, tuple(v.shape)) for k, v in p.state_dict().items()]
            self.assertEqual(got, upstream_keys(nl))  # keys, shapes and order
            self.assertNotIn("gate_temperature", dict(p.named_parameters()))

    def test_scalar_mlp2_inner_width_is_hidden(self):
        p = make_projector(num_layers=3, hidden=16, inter=40)
        sd = p.state_dict()
        for path in ("key", "value"):
            self.assertEqual(tuple(sd[f"{path}_scalar_mlp2.blocks.0.w1.weight"].shape), (16, 16))
            self.assertEqual(tuple(sd[f"{path}_scalar_mlp2.blocks.0.w2.weight"].shape), (16, 16))
            self.assertEqual(tuple(sd[f"{path}_mlp1.blocks.0.w1.weight"].shape), (40, 16))
            self.assertEqual(tuple(sd[f"{path}_proj_mlp2.blocks.0.w2.weight"].shape), (16, 40))

    def test_num_layers_below_three_refused(self):
        for nl in (0, 1, 2):
            with self.assertRaisesRegex(ValueError, "num_layers must be >= 3"):
                C2CProjector(source_dim=4, target_dim=4, num_layers=nl, hidden_dim=8, intermediate_dim=8)
        C2CProjector(source_dim=4, target_dim=4, num_layers=3, hidden_dim=8, intermediate_dim=8)

    def test_ffn_block_modules(self):
        p = make_projector()
        blk = p.key_mlp1.blocks[0]
        self.assertIsNone(blk.w1.bias)
        self.assertIsNone(blk.w2.bias)
        self.assertEqual(blk.norm.eps, 1e-6)
        x = torch.tensor([-2.0, -0.5, 0.0, 0.7, 3.0], dtype=torch.float64)
        erf_gelu = 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))
        self.assertLess(float((blk.act(x) - erf_gelu).abs().max()), 1e-12)  # the tanh form is ~1e-4 off
        self.assertEqual(float(p.gate_temperature), 1.0)
        z = C2CProjector(source_dim=4, target_dim=4, hidden_dim=8, intermediate_dim=8, zero_init=True)
        self.assertEqual(float(z.key_proj_out.weight.abs().sum() + z.value_proj_out.bias.abs().sum()), 0.0)

    def test_eval_forward_matches_numpy(self):
        for nl, seq in ((3, 1), (4, 6)):
            p = make_projector(seed=nl, num_layers=nl)
            sk, sv = torch.randn(1, 2, seq, 8) * 2, torch.randn(1, 2, seq, 8)
            rk, rv = torch.randn(1, 4, seq, 4) * 3, torch.randn(1, 4, seq, 4)
            with torch.no_grad():
                fk, fv = p.double()((sk.double(), sv.double()), (rk.double(), rv.double()))
            sd = p.state_dict()
            ek = np_forward_path(sd, "key", sk[0].double().numpy(), rk[0].double().numpy(), 4, 4, nl - 2)
            ev = np_forward_path(sd, "value", sv[0].double().numpy(), rv[0].double().numpy(), 4, 4, nl - 2)
            np.testing.assert_allclose(fk[0].numpy(), ek, rtol=0, atol=1e-10)
            np.testing.assert_allclose(fv[0].numpy(), ev, rtol=0, atol=1e-10)
            self.assertGreater(np.abs(ek - rk[0].numpy()).max(), 1e-3)  # the fusion actually changes the KV

    def test_closed_gate_returns_receiver(self):
        p = make_projector()
        with torch.no_grad():
            p.key_gate_logit.fill_(-0.5)
            p.value_gate_logit.fill_(0.0)  # 0 is closed too: the hard gate is logit > 0
        s = (torch.randn(1, 2, 5, 8), torch.randn(1, 2, 5, 8))
        r = (torch.randn(1, 4, 5, 4), torch.randn(1, 4, 5, 4))
        with torch.no_grad():
            fk, fv = p(s, r)
        self.assertTrue(torch.equal(fk, r[0]))
        self.assertTrue(torch.equal(fv, r[1]))

    def test_training_mode_gumbel_gate_and_temperature(self):
        p = make_projector()
        p.anneal_steps = 100
        self.assertAlmostEqual(p.update_temperature(0), 1.0)
        self.assertAlmostEqual(p.update_temperature(p.anneal_steps // 2), math.sqrt(0.001), places=6)
        self.assertAlmostEqual(p.update_temperature(10 * p.anneal_steps), 0.001, places=9)
        self.assertAlmostEqual(float(p.gate_temperature), 0.001, places=9)
        p.train()
        s = (torch.randn(1, 2, 3, 8), torch.randn(1, 2, 3, 8))
        r = (torch.randn(1, 4, 3, 4), torch.randn(1, 4, 3, 4))
        fk, _ = p(s, r)
        fk.sum().backward()
        self.assertIsNotNone(p.key_gate_logit.grad)
        self.assertIsNotNone(p.key_in.weight.grad)
        torch.manual_seed(1)
        a, _ = p(s, r)
        torch.manual_seed(2)
        b, _ = p(s, r)
        self.assertFalse(torch.equal(a, b))  # dropout + Gumbel noise are live in training

    def test_shape_validation(self):
        p = make_projector()
        with self.assertRaises(ValueError):
            p((torch.randn(1, 3, 2, 8), torch.randn(1, 3, 2, 8)), (torch.randn(1, 4, 2, 4), torch.randn(1, 4, 2, 4)))
        with self.assertRaises(ValueError):
            p((torch.randn(1, 2, 3, 8), torch.randn(1, 2, 3, 8)), (torch.randn(1, 4, 2, 4), torch.randn(1, 4, 2, 4)))

    def test_terminal_layer_map(self):
        self.assertEqual(terminal_layer_map(28, 24)[:6], [0, 0, 0, 0, 0, 1])
        self.assertEqual(terminal_layer_map(28, 24)[-1], 23)
        self.assertEqual(terminal_layer_map(2, 5), [3, 4])
        self.assertEqual(terminal_layer_map(3, 3), [0, 1, 2])


class TestIO(unittest.TestCase):
    def test_bf16_rounding(self):
        x = np.array([1.0, 1.0 + 2 ** -8, 1.0 + 3 * 2 ** -8, -2.5, 3.0e38, 1e-40], dtype=np.float32)
        ref = torch.from_numpy(x).to(torch.bfloat16).to(torch.float32).numpy()
        np.testing.assert_array_equal(round_to_bf16(x), ref)
        self.assertEqual(f32_to_bf16_bits(np.float32(1.0)).shape, ())

    def test_safetensors_round_trip(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "t.safetensors")
            a = np.random.RandomState(0).randn(3, 5).astype(np.float32)
            write_safetensors(path, {"a": ("F32", a), "h": ("F16", a), "b": ("BF16", a),
                                     "i": ("I32", np.array([7, -1], dtype=np.int32)), "s": ("F32", np.float32(2.5))},
                              metadata={"k": "v"})
            with open(path, "rb") as f:
                hlen = int.from_bytes(f.read(8), "little")
            self.assertEqual((8 + hlen) % 8, 0)
            arr, dt, md = read_safetensors(path)
            self.assertEqual(md, {"k": "v"})
            self.assertEqual(dt, {"a": "F32", "h": "F16", "b": "BF16", "i": "I32", "s": "F32"})
            np.testing.assert_array_equal(arr["a"], a)
            np.testing.assert_array_equal(arr["h"], a.astype(np.float16).astype(np.float32))
            np.testing.assert_array_equal(arr["b"], round_to_bf16(a))
            np.testing.assert_array_equal(arr["i"], [7, -1])
            self.assertEqual(arr["s"].shape, ())

    def test_fuser_save_load_round_trip(self):
        projectors = [make_projector(seed=i, num_layers=4) for i in range(3)]
        with torch.no_grad():
            projectors[1].value_gate_logit.fill_(-1.0)
        for dtype in ("float32", "bfloat16", "float16"):
            with tempfile.TemporaryDirectory() as d:
                m = save_fuser(d, projectors, sharer_num_layers=5, dtype=dtype, metadata={"seed": 1})
                self.assertEqual(m["receiver"], {"num_layers": 3, "num_kv_heads": 4, "head_dim": 4})
                self.assertEqual(m["sharer"], {"num_layers": 5, "num_kv_heads": 2, "head_dim": 8})
                with open(os.path.join(d, "fuser.json")) as f:
                    self.assertEqual(json.load(f)["dtype"], dtype)
                _, dts, _ = read_safetensors(os.path.join(d, "fuser.safetensors"))
                self.assertEqual(set(dts.values()), {{"float32": "F32", "bfloat16": "BF16", "float16": "F16"}[dtype]})
                self.assertEqual({k.split(".", 1)[1] for k in dts}, {k for k, _ in upstream_keys(4)} - {"gate_temperature"})
                loaded = load_fuser(d)
                self.assertEqual(loaded["layer_map"], [2, 3, 4])
                for orig, back in zip(projectors, loaded["projectors"]):
                    for k, v in orig.state_dict().items():
                        if k == "gate_temperature":
                            continue
                        v = v.numpy()
                        want = {"float32": v, "bfloat16": round_to_bf16(v),
                                "float16": v.astype(np.float16).astype(np.float32)}[dtype]
                        np.testing.assert_array_equal(back.state_dict()[k].numpy(), want, err_msg=k)

    def test_fuser_json_versions(self):
        def rewrite(d, **fields):
            path = os.path.join(d, "fuser.json")
            with open(path) as f:
                m = json.load(f)
            m.update(fields)
            with open(path, "w") as f:
                json.dump(m, f)

        with tempfile.TemporaryDirectory() as d:
            m = save_fuser(d, [make_projector(hidden=16, inter=16)], sharer_num_layers=1)
            self.assertEqual(m["format_version"], 2)
            rewrite(d, format_version=1)  # version 1 with hidden == intermediate: the same bytes
            self.assertEqual(len(load_fuser(d)["projectors"]), 1)
            rewrite(d, format_version=3)
            with self.assertRaisesRegex(ValueError, "format_version must be 1 or 2, got 3"):
                load_fuser(d)
        with tempfile.TemporaryDirectory() as d:
            save_fuser(d, [make_projector(hidden=16, inter=24)], sharer_num_layers=1)
            self.assertEqual(len(load_fuser(d)["projectors"]), 1)
            rewrite(d, format_version=1)
            with self.assertRaisesRegex(ValueError, "format_version 1 with hidden_dim \\(16\\) != intermediate_dim \\(24\\)"):
                load_fuser(d)

    def test_load_rejects_unknown_and_missing_tensors(self):
        with tempfile.TemporaryDirectory() as d:
            save_fuser(d, [make_projector()], sharer_num_layers=1)
            path = os.path.join(d, "fuser.safetensors")
            arr, _, _ = read_safetensors(path)
            extra = dict({k: ("F32", v) for k, v in arr.items()}, **{"0.key_extra.weight": ("F32", np.zeros(2))})
            write_safetensors(path, extra)
            with self.assertRaisesRegex(ValueError, "0.key_extra.weight"):
                load_fuser(d)
            missing = {k: ("F32", v) for k, v in arr.items() if k != "0.value_proj_out.bias"}
            write_safetensors(path, missing)
            with self.assertRaisesRegex(ValueError, "0.value_proj_out.bias"):
                load_fuser(d)


class TestGoldenFixtures(unittest.TestCase):
    """The committed fixtures must be reproducible from the committed weights with the PyTorch projector."""

    def test_fixtures_match_projector(self):
        names = sorted(n for n in os.listdir(FIXTURES) if os.path.isdir(os.path.join(FIXTURES, n)))
        self.assertGreaterEqual(len(names), 4)
        for name in names:
            loaded = load_fuser(os.path.join(FIXTURES, name))
            cases, _, md = read_safetensors(os.path.join(FIXTURES, name, "cases.safetensors"))
            for c in range(int(md["num_cases"])):
                for l, proj in enumerate(loaded["projectors"]):
                    j = loaded["layer_map"][l]
                    t = lambda k: torch.from_numpy(cases[f"c{c}.{k}"]).double()[None]  # noqa: E731
                    with torch.no_grad():
                        fk, fv = proj.double()((t(f"sharer.{j}.key"), t(f"sharer.{j}.value")),
                                               (t(f"receiver.{l}.key"), t(f"receiver.{l}.value")))
                    np.testing.assert_allclose(fk[0].numpy(), cases[f"c{c}.fused.{l}.key"], rtol=0, atol=1e-5)
                    np.testing.assert_allclose(fv[0].numpy(), cases[f"c{c}.fused.{l}.value"], rtol=0, atol=1e-5)


if __name__ == "__main__":
    unittest.main()
