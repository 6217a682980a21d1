"""How the Chinchilla trap's crossover moves when decoding is priced by the roofline.

The question
    examples/chinchilla_trap.py prices decoding at a fixed MFU (10% by default): every
    generated token costs 2N FLOPs at a tenth of the peak. Real decoding is bound by memory
    bandwidth at small batch: each step reads every weight once, for the whole batch, and
    each sequence's KV cache. So how cheap decoding is depends on the batch, and with it
    the query volume from which the 8B x 15T model is cheaper to own than 70B x 1.4T, and
    the dollar-optimal design for Chinchilla's loss. How far does the crossover move?

The method
    * ``chinplan.Deployment(batch=B, context=S)`` selects the roofline decode
      (``chinplan.costs.token_seconds``): per generated token

          t = max(2N / (P U_prefill), (N w / B + S k(N)) / BW),

      with w = 2 bytes per bf16 weight, k(N) the KV-cache bytes per token of a Llama 3-style
      shape of N parameters (``chinplan.arch.log_kv_bytes_per_token_for_params``: 8 KV heads
      of 128, about 150 KB per token at 8B), BW the H100 SXM's 3.35 TB/s, P its 989 TFLOP/s
      bf16 peak. Prefill stays compute bound at 2N / (P U_prefill).
    * With fixed prices and MFUs, TCO is linear in the query volume Q:
      train + Q serve, so the crossover is Q* = (train_8B - train_70B) / (serve_70B - serve_8B)
      (``chinplan.tco`` of one query: its training and its serving dollars).
    * ``chinplan.cost_optimal`` gives the dollar-optimal design reaching the 70B design's loss
      under the posterior's median law at ``--queries`` lifetime queries: under the roofline
      the serving cost is not linear in N and it is found by a search on the iso-loss curve.

How to read the output
    The first table gives, per decode model, the decode speed of each design (tokens per
    second per GPU) and the crossover volume; the second the dollar-optimal design. Batching
    amortises the weight reads: at batch 1 decoding is far dearer than the fixed 10% MFU and
    the small model wins early; at batch 64 it is cheaper, the 70B model's weights are read
    once per 64 tokens, and the crossover moves out. Everything here is a point estimate
    (costs fixed; the law at its posterior median): the bands are in chinchilla_trap.py.

Run::

    python examples/roofline_trap.py
    python examples/roofline_trap.py --context 8192 --queries 1e11
"""

from __future__ import annotations

import argparse

import numpy as np

import chinplan as cp
from chinplan.format import human_count as count
from chinplan.format import human_dollars as usd
from chinplan.format import say

DESIGNS = {"8B x 15T": (8e9, 15e12), "70B x 1.4T": (70e9, 1.4e12)}


def modes(input_tokens: float, output_tokens: float, context: float | None, batches) -> dict:
    """The fixed-MFU decode and the roofline at each batch size, on H100 SXMs (bf16)."""
    base = cp.Deployment(input_tokens=input_tokens, output_tokens=output_tokens, peak_flops=cp.H100_SXM.bf16)
    out = {"fixed MFU 10%": base}
    for b in batches:
        out[f"roofline, batch {b}"] = base._replace(
            batch=float(b), context=context, memory_bandwidth=cp.H100_SXM.memory_bandwidth, bytes_per_weight=2.0
        )
    return out


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input-tokens", type=float, default=300.0, help="prompt tokens per query")
    p.add_argument("--output-tokens", type=float, default=200.0, help="generated tokens per query")
    p.add_argument("--context", type=float, help="mean KV-cache tokens per sequence (default input + output/2)")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8, 64, 256], help="roofline batch sizes")
    p.add_argument("--queries", type=float, default=1e10, help="lifetime queries for the dollar-optimal design")
    p.add_argument("--small", action="store_true", help="three batch sizes (smoke tests)")
    return p


def main(argv=None) -> dict:
    args = _parser().parse_args(argv)
    batches = args.batches[:3] if args.small else args.batches
    deployments = modes(args.input_tokens, args.output_tokens, args.context, batches)
    n = np.array([v[0] for v in DESIGNS.values()])
    d = np.array([v[1] for v in DESIGNS.values()])
    law = cp.decide.median_params(cp.default_posterior().params)  # the posterior's median law
    target = float(cp.loss(law, n[1], d[1]))  # the 70B design's loss

    rows = {}
    for name, dep in deployments.items():
        one = cp.tco(n, d, dep._replace(queries=1.0))  # one query: its serving dollars apart
        train, serve = (np.asarray(x, np.float64) for x in (one.train_dollars, one.inference_dollars))
        decode = np.asarray(cp.costs.token_seconds(n, dep).decode, np.float64)
        crossover = (train[0] - train[1]) / (serve[1] - serve[0]) if serve[1] > serve[0] else float("inf")
        plan = cp.cost_optimal(law, target, dep._replace(queries=args.queries))
        rows[name] = {
            "tokens_per_s": 1.0 / decode, "crossover": float(crossover), "train": train, "serve_per_query": serve,
            "optimal_n": float(plan.n), "optimal_d": float(plan.d),
            "optimal_dollars": float(cp.tco(plan.n, plan.d, dep._replace(queries=args.queries)).dollars),
        }  # fmt: skip

    tokens = f"{args.input_tokens:g}+{args.output_tokens:g} tokens per query"
    context = "input + output/2" if args.context is None else f"{args.context:g}"
    say("8B x 15T against 70B x 1.4T on H100 SXMs, bf16, $2/GPU-hour (the posterior's median law: a point estimate);")
    say(f"{tokens}; KV context {context}")
    say()
    say(f"{'decode model':<20}{'8B tok/s':>10}{'70B tok/s':>11}{'8B cheaper from':>17}")
    for name, r in rows.items():
        say(f"{name:<20}{r['tokens_per_s'][0]:>10.0f}{r['tokens_per_s'][1]:>11.0f}{count(r['crossover']):>12} queries")
    say()
    say(f"Dollar-optimal design for the 70B design's loss {target:.4f} (median law)")
    say(f"at {count(args.queries)} queries:")
    say(f"{'decode model':<20}{'N':>8}{'D':>8}{'tokens/param':>14}{'TCO':>10}")
    for name, r in rows.items():
        n_opt, d_opt = r["optimal_n"], r["optimal_d"]
        say(f"{name:<20}{count(n_opt):>8}{count(d_opt):>8}{d_opt / n_opt:>14.0f}{usd(r['optimal_dollars']):>10}")
    return {"modes": list(rows), "rows": rows, "target_loss": target, "deployments": deployments}


if __name__ == "__main__":
    main()
