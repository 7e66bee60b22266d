#!/usr/bin/python3
"""PyTorch reference of the `moe train` model: the test oracle of tests/train.

Written from the formulas of docs/TRAINING.md (qwen3moe-style MoE transformer),
independently of src/train: autograd gives the gradients.

  torch_ref.py DIR          oracle: reads DIR/manifest.json + DIR/params.f32 (the
                            weights, batch and options dumped by torch_oracle_test),
                            writes DIR/ref.json (loss terms, expert counts, routing
                            margin) and DIR/ref_grads.f32 (same flat layout as params)
  torch_ref.py bench ...    throughput: forward + backward + AdamW steps on random
                            batches (see scripts/bench_train_torch.sh)

Model (per layer, float32):
  xn = rmsnorm(x) * attn_norm
  x += wo . attn(rope(qnorm(wq xn)), rope(knorm(wk xn)), wv xn)   GQA, NEOX rope, causal
  xn = rmsnorm(x) * ffn_norm
  p = softmax(router xn); top-k of p + bias (bias: aux-free only; ties to the lower index)
  w_j = p_j / max(sum_sel p, 6.103515625e-5)
  x += sum_j w_j expert_j(xn) (+ shared(xn)), expert(x) = down (silu(gate x) * up x)
  logits = output . (rmsnorm(x) * output_norm); loss = mean CE (targets < 0 ignored)
  + aux: alpha * N_exp * sum_i f_i P_i per layer, f_i = count_i / (T k), P_i = mean_t p_ti
  + z:   coef * mean_t logsumexp(router logits_t)^2 per layer
  capacity F: expert takes at most ceil(F T k / N_exp) (token order), the rest dropped.
"""
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

CLAMP = 6.103515625e-5


def rmsnorm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope_tables(S, D, base):
    half = D // 2
    i = torch.arange(half, dtype=torch.float64)
    inv = base ** (-2.0 * i / D)
    ang = torch.arange(S, dtype=torch.float64)[:, None] * inv[None, :]
    return torch.cos(ang).float(), torch.sin(ang).float()  # [S, D/2]


def rope_neox(x, cos, sin):
    # x [B, S, H, D]; pairs (i, i + D/2)
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], dim=-1)


class Model:
    """Parameters: dict name -> tensor with the GGUF names and row-major shapes."""

    def __init__(self, cfg, params, routing):
        self.c = cfg
        self.p = params
        self.r = routing

    def forward(self, tokens, targets, sel_bias=None):
        c, p, r = self.c, self.p, self.r
        B, S = tokens.shape
        E, H, Hk, D = c["n_embd"], c["n_head"], c["n_head_kv"], c["head_dim"]
        X, K = c["n_expert"], c["n_expert_used"]
        eps = c["rms_eps"]
        N = B * S
        cos, sin = rope_tables(S, D, c["rope_base"])
        mask = torch.ones(S, S, dtype=torch.bool).tril()
        x = p["token_embd.weight"][tokens.reshape(-1)].reshape(B, S, E)
        aux = x.new_zeros(())
        z = x.new_zeros(())
        counts_all, margins = [], []
        for il in range(c["n_layer"]):
            g = lambda n: p[f"blk.{il}.{n}.weight"]
            # attention
            xn = rmsnorm(x, g("attn_norm"), eps)
            q = (xn @ g("attn_q").t()).reshape(B, S, H, D)
            k = (xn @ g("attn_k").t()).reshape(B, S, Hk, D)
            v = (xn @ g("attn_v").t()).reshape(B, S, Hk, D)
            q = rope_neox(rmsnorm(q, g("attn_q_norm"), eps), cos, sin)
            k = rope_neox(rmsnorm(k, g("attn_k_norm"), eps), cos, sin)
            rep = H // Hk
            k = k.repeat_interleave(rep, dim=2)  # head h uses kv head h // rep
            v = v.repeat_interleave(rep, dim=2)
            q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # [B, H, S, D]
            sc = (q @ k.transpose(-1, -2)) / math.sqrt(D)
            sc = sc.masked_fill(~mask, float("-inf"))
            o = torch.softmax(sc, dim=-1) @ v  # [B, H, S, D]
            o = o.transpose(1, 2).reshape(B, S, H * D)
            x = x + o @ g("attn_output").t()
            # MoE
            xn = rmsnorm(x, g("ffn_norm"), eps).reshape(N, E)
            logits = xn @ g("ffn_gate_inp").t()  # [N, X]
            probs = torch.softmax(logits, dim=-1)
            lse = torch.logsumexp(logits, dim=-1)
            with torch.no_grad():
                score = probs.detach().clone()
                if sel_bias is not None:
                    score = score + sel_bias[il][None, :]
                # stable descending sort: ties go to the lower index
                order = torch.sort(score, dim=-1, descending=True, stable=True).indices
                sel = order[:, :K]  # [N, K]
                if K < X:
                    srt = torch.gather(score, 1, order)
                    # relative to the k-th score: float32 rounding of p (+ bias) is relative
                    margins.append(float(((srt[:, K - 1] - srt[:, K]) / srt[:, K - 1].abs().clamp(min=1e-30)).min()))
            psel = torch.gather(probs, 1, sel)
            wsel = psel / psel.sum(-1, keepdim=True).clamp(min=CLAMP)
            counts = torch.bincount(sel.reshape(-1), minlength=X)
            counts_all.append(counts.tolist())
            if r["balance"] == "aux":
                f = counts.to(probs.dtype) / float(N * K)
                aux = aux + r["aux_alpha"] * X * (f * probs.mean(0)).sum()
            if r["z_coef"] > 0:
                z = z + r["z_coef"] * lse.pow(2).mean()
            # capacity-limited dispatch in token order
            keep = torch.ones(N, K, dtype=torch.bool)
            if r["capacity_factor"] > 0:
                cap = max(1, math.ceil(r["capacity_factor"] * N * K / X))
                seen = [0] * X
                for t in range(N):
                    for j in range(K):
                        e = int(sel[t, j])
                        if seen[e] < cap:
                            seen[e] += 1
                        else:
                            keep[t, j] = False
            out = torch.zeros_like(xn)
            gate, up, down = g("ffn_gate_exps"), g("ffn_up_exps"), g("ffn_down_exps")
            for e in range(X):
                tok, slot = torch.nonzero((sel == e) & keep, as_tuple=True)
                if tok.numel() == 0:
                    continue  # idle expert: no graph, zero gradient
                xe = xn[tok]
                he = F.silu(xe @ gate[e].t()) * (xe @ up[e].t())
                ye = he @ down[e].t()
                out = out.index_add(0, tok, ye * wsel[tok, slot][:, None])
            if f"blk.{il}.ffn_gate_shexp.weight" in p:
                out = out + (F.silu(xn @ g("ffn_gate_shexp").t()) * (xn @ g("ffn_up_shexp").t())) @ g(
                    "ffn_down_shexp").t()
            x = x + out.reshape(B, S, E)
        xf = rmsnorm(x, p["output_norm.weight"], eps)
        lg = xf.reshape(N, E) @ p["output.weight"].t()
        ce = F.cross_entropy(lg, targets.reshape(-1).long(), ignore_index=-1, reduction="mean")
        return ce, aux, z, counts_all, margins


def oracle(d):
    man = json.load(open(os.path.join(d, "manifest.json")))
    flat = torch.from_numpy(
        __import__("numpy").fromfile(os.path.join(d, "params.f32"), dtype="<f4").copy())
    assert flat.numel() == man["n_params"], (flat.numel(), man["n_params"])
    params = {}
    for t in man["tensors"]:
        params[t["name"]] = flat[t["offset"]:t["offset"] + t["size"]].reshape(t["shape"]).clone().requires_grad_(True)
    B, S = man["B"], man["S"]
    tokens = torch.tensor(man["tokens"], dtype=torch.long).reshape(B, S)
    targets = torch.tensor(man["targets"], dtype=torch.long).reshape(B, S)
    sel_bias = None
    if man["routing"]["balance"] == "aux_free":
        X = man["shape"]["n_expert"]
        sel_bias = torch.tensor(man["sel_bias"], dtype=torch.float32).reshape(-1, X)
    model = Model(man["shape"], params, man["routing"])
    ce, aux, z, counts, margins = model.forward(tokens, targets, sel_bias)
    total = ce + aux + z
    total.backward()
    grads = torch.zeros(man["n_params"], dtype=torch.float32)
    for t in man["tensors"]:
        gr = params[t["name"]].grad
        if gr is not None:
            grads[t["offset"]:t["offset"] + t["size"]] = gr.reshape(-1)
    grads.numpy().astype("<f4").tofile(os.path.join(d, "ref_grads.f32"))
    res = {"ce": float(ce), "aux": float(aux), "z": float(z), "total": float(total),
           "counts": counts, "min_margin": min(margins) if margins else 1.0,
           "torch": torch.__version__}
    json.dump(res, open(os.path.join(d, "ref.json"), "w"))
    print(f"torch_ref: torch {torch.__version__}, loss {float(total):.8g} (ce {float(ce):.8g} aux "
          f"{float(aux):.8g} z {float(z):.8g}), min relative top-k margin {res['min_margin']:.3g}")


def bench(argv):
    import argparse
    ap = argparse.ArgumentParser(prog="torch_ref.py bench")
    for k, v in [("vocab", 1024), ("layers", 4), ("embd", 256), ("heads", 4), ("kv_heads", 2),
                 ("head_dim", 64), ("experts", 8), ("top_k", 2), ("ff", 128), ("shexp", 0),
                 ("ctx", 128), ("batch", 8), ("steps", 10), ("warmup_steps", 2), ("threads", 2)]:
        ap.add_argument("--" + k.replace("_", "-"), type=int, default=v)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.set_flush_denormal(True)  # as moe train sets FTZ/DAZ
    torch.manual_seed(1)
    cfg = {"n_vocab": a.vocab, "n_embd": a.embd, "n_layer": a.layers, "n_head": a.heads,
           "n_head_kv": a.kv_heads, "head_dim": a.head_dim, "n_expert": a.experts,
           "n_expert_used": a.top_k, "n_ff_exp": a.ff, "rms_eps": 1e-6, "rope_base": 10000.0}
    E, D, X, Fw = a.embd, a.head_dim, a.experts, a.ff
    shapes = {"token_embd.weight": [a.vocab, E], "output_norm.weight": [E], "output.weight": [a.vocab, E]}
    for il in range(a.layers):
        b = f"blk.{il}."
        shapes.update({b + "attn_norm.weight": [E], b + "attn_q.weight": [a.heads * D, E],
                       b + "attn_k.weight": [a.kv_heads * D, E], b + "attn_v.weight": [a.kv_heads * D, E],
                       b + "attn_output.weight": [E, a.heads * D], b + "attn_q_norm.weight": [D],
                       b + "attn_k_norm.weight": [D], b + "ffn_norm.weight": [E],
                       b + "ffn_gate_inp.weight": [X, E], b + "ffn_gate_exps.weight": [X, Fw, E],
                       b + "ffn_up_exps.weight": [X, Fw, E], b + "ffn_down_exps.weight": [X, E, Fw]})
        if a.shexp:
            shapes.update({b + "ffn_gate_shexp.weight": [a.shexp, E], b + "ffn_up_shexp.weight": [a.shexp, E],
                           b + "ffn_down_shexp.weight": [E, a.shexp]})
    params = {n: (torch.ones(s) if len(s) == 1 else torch.randn(s) * 0.02).requires_grad_(True)
              for n, s in shapes.items()}
    decay = [t for t in params.values() if t.dim() > 1]
    nodecay = [t for t in params.values() if t.dim() == 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": nodecay, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.95))
    routing = {"balance": "aux", "aux_alpha": 0.01, "z_coef": 1e-3, "capacity_factor": 0.0}
    model = Model(cfg, params, routing)
    ntok = a.batch * a.ctx
    t0 = None
    for step in range(a.warmup_steps + a.steps):
        if step == a.warmup_steps:
            t0 = time.perf_counter()
        tokens = torch.randint(0, a.vocab, (a.batch, a.ctx))
        targets = torch.randint(0, a.vocab, (a.batch, a.ctx))
        opt.zero_grad(set_to_none=True)
        ce, aux, z, _, _ = model.forward(tokens, targets)
        (ce + aux + z).backward()
        torch.nn.utils.clip_grad_norm_(list(params.values()), 1.0)
        opt.step()
    el = time.perf_counter() - t0
    tps = a.steps * ntok / el
    # which BLAS torch runs on (Debian: reference libblas3 unless OpenBLAS/BLIS is installed)
    blas = sorted({ln.split()[-1] for ln in open("/proc/self/maps") if "libblas" in ln or "openblas" in ln
                   or "blis" in ln})
    m1, m2 = torch.randn(1024, 256), torch.randn(256, 1024)
    t1 = time.perf_counter()
    for _ in range(10):
        m1 @ m2
    gflops = 10 * 2 * 1024 * 256 * 1024 / (time.perf_counter() - t1) / 1e9
    print(json.dumps({"torch_tokens_per_s": tps, "steps": a.steps, "tokens_per_step": ntok,
                      "threads": a.threads, "seconds": el, "torch": torch.__version__,
                      "blas": blas, "gemm_gflops": gflops}))


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "bench":
        bench(sys.argv[2:])
    elif len(sys.argv) == 2:
        torch.set_num_threads(1)
        oracle(sys.argv[1])
    else:
        sys.exit(__doc__)
