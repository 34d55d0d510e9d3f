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
from c2c.projector import C2CProjector, official_state_dict_keys, terminal_layer_map  # noqa: E402
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


class TestProjector(unittest.TestCase):
    def test_official_keys_and_shapes(self):
        for nl in (3, 4):
            p = make_projector(num_layers=nl, sh=2, sd=8, rh=4, rd=4, hidden=16, inter=24)
            sd = p.state_dict()
            self.assertEqual(set(sd), set(official_state_dict_keys(nl)))
            in_dim, out_dim = 16, 16
            for path in ("key", "value"):
                self.assertEqual(tuple(sd[f"{path}_in.weight"].shape), (16, in_dim + out_dim))
                self.assertEqual(tuple(sd[f"{path}_in.bias"].shape), (16,))
                for b in range(nl - 2):
                    self.assertEqual(tuple(sd[f"{path}_proj_mlp2.blocks.{b}.w1.weight"].shape), (24, 16))
                    self.assertEqual(tuple(sd[f"{path}_proj_mlp2.blocks.{b}.w2.weight"].shape), (16, 24))
                    self.assertEqual(tuple(sd[f"{path}_proj_mlp2.blocks.{b}.norm.weight"].shape), (16,))
                self.assertEqual(tuple(sd[f"{path}_scalar_head.weight"].shape), (4, 16))
                self.assertEqual(tuple(sd[f"{path}_proj_out.weight"].shape), (out_dim, 16))
                self.assertEqual(tuple(sd[f"{path}_gate_logit"].shape), ())
            self.assertEqual(tuple(sd["gate_temperature"].shape), ())
            self.assertNotIn("gate_temperature", dict(p.named_parameters()))

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
                self.assertTrue(all(k.split(".", 1)[1] in official_state_dict_keys(4) for k in dts))
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
