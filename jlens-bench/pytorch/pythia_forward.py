"""PyTorch stand-in for the Hugging Face reference of docs/PERFORMANCE.md.

A plain GPT-NeoX forward (the arithmetic of transformers' GPTNeoXForCausalLM with eager attention:
fused QKV, partial rotary, parallel residual, exact GELU) with random float32 weights of a Pythia
config, timed per batch on N threads. HF transformers is not packaged for Debian 12, so this is the
closest reference one can install here (python3-torch 1.13 + libopenblas0-pthread). Besides the
hidden states it computes the logits, as HF does with output_hidden_states=True; --no-logits skips them
to compare with jlens, which skips work no one reads.

    /usr/bin/python3 jlens-bench/pytorch/pythia_forward.py --config pythia-1.4b --batch 16 --tokens 32
"""
import argparse, json, math, os, resource, statistics, time
from pathlib import Path

import torch

CONFIGS = Path(__file__).resolve().parents[2] / "jlens-core/src/main/resources/dev/jlens/synth/configs"


def rotary(x, cos, sin, rot):
    xr, xp = x[..., :rot], x[..., rot:]
    x1, x2 = xr[..., : rot // 2], xr[..., rot // 2:]
    return torch.cat((xr * cos + torch.cat((-x2, x1), -1) * sin, xp), -1)


class Block(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        d, self.h = c["hidden_size"], c["num_attention_heads"]
        self.hs = d // self.h
        self.rot = int(self.hs * c["rotary_pct"])
        eps = c["layer_norm_eps"]
        self.ln1, self.ln2 = torch.nn.LayerNorm(d, eps=eps), torch.nn.LayerNorm(d, eps=eps)
        self.qkv, self.dense = torch.nn.Linear(d, 3 * d), torch.nn.Linear(d, d)
        self.up, self.down = torch.nn.Linear(d, c["intermediate_size"]), torch.nn.Linear(c["intermediate_size"], d)

    def forward(self, x, cos, sin, mask):
        B, T, d = x.shape
        qkv = self.qkv(self.ln1(x)).view(B, T, self.h, 3 * self.hs).permute(0, 2, 1, 3)
        q, k, v = qkv[..., : self.hs], qkv[..., self.hs: 2 * self.hs], qkv[..., 2 * self.hs:]
        q, k = rotary(q, cos, sin, self.rot), rotary(k, cos, sin, self.rot)
        s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.hs)
        s = s.masked_fill(mask, torch.finfo(s.dtype).min)
        a = torch.matmul(torch.softmax(s, -1), v).permute(0, 2, 1, 3).reshape(B, T, d)
        attn = self.dense(a)
        mlp = self.down(torch.nn.functional.gelu(self.up(self.ln2(x))))
        return mlp + attn + x


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--config", default="pythia-1.4b")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--tokens", type=int, default=32)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--iterations", type=int, default=5)
    p.add_argument("--no-logits", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    c = json.loads((CONFIGS / f"{a.config}.json").read_text())
    d, L, V = c["hidden_size"], c["num_hidden_layers"], c["vocab_size"]
    t0 = time.perf_counter()
    embed = torch.nn.Embedding(V, d)
    blocks = torch.nn.ModuleList(Block(c) for _ in range(L))
    lnf, out = torch.nn.LayerNorm(d, eps=c["layer_norm_eps"]), torch.nn.Linear(d, V, bias=False)
    for m in [embed, blocks, lnf, out]:
        for w in m.parameters():
            torch.nn.init.normal_(w, std=0.02)
    print(f"built random {a.config} in {time.perf_counter() - t0:.1f} s; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    hs = d // c["num_attention_heads"]
    rot = int(hs * c["rotary_pct"])
    inv = 1.0 / (c["rotary_emb_base"] ** (torch.arange(0, rot, 2).float() / rot))
    f = torch.outer(torch.arange(a.tokens).float(), inv)
    emb = torch.cat((f, f), -1)
    cos, sin = emb.cos()[None, None], emb.sin()[None, None]
    mask = torch.triu(torch.ones(a.tokens, a.tokens, dtype=torch.bool), 1)
    ids = torch.randint(0, V, (a.batch, a.tokens))

    def forward():
        x = embed(ids)
        hidden = [x]
        for b in blocks:
            x = b(x, cos, sin, mask)
            hidden.append(x)
        if not a.no_logits:
            out(lnf(x))
        return hidden

    times = []
    with torch.inference_mode():
        forward()  # warm-up
        for i in range(a.iterations):
            t = time.perf_counter()
            forward()
            times.append(time.perf_counter() - t)
            print(f"batch {i + 1}: {times[-1]:.2f} s")
    n = a.batch * a.tokens
    med = statistics.median(times)
    print(f"median {med:.2f} s per {a.batch}x{a.tokens} batch = {n / med:.1f} tokens/s"
          f"{' (no logits)' if a.no_logits else ' (with logits)'}; peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")


if __name__ == "__main__":
    main()
