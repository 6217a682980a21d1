"""Datasets shipped with chinplan.

``chinchilla()``: 245 training runs of Hoffmann et al. 2022 (Figure 4), digitised by Epoch AI
(Besiroglu et al. 2024); see ``SOURCE.md`` beside this file. Tokens are D = C / (6N).
``datablations()``: 306 data-constrained runs of Muennighoff et al. 2023
(``SOURCE-datablations.md``). ``porian()``: the 15 isoFLOP ladders of Porian et al. 2024
(``SOURCE-porian.md``), which ``chinplan validate --ladders`` back-tests.
"""

from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd

from chinplan import _checks
from chinplan.law import FLOPS_PER_PARAM_TOKEN

__all__ = ["chinchilla", "chinchilla_path", "datablations", "porian", "porian_path", "CHINCHILLA_SHA256", "PORIAN_SHA256", "OUTLIER_MAX_TOKENS_PER_PARAM"]

#: sha256 of the shipped CSV, as recorded in SOURCE.md (the file is unchanged from Epoch AI's).
CHINCHILLA_SHA256 = "193478df4e90f040016431996c45682659306840ecdadf83cfb9cd5ca0aa1b30"
#: The 5 runs Epoch AI drop (loss >= 3.447, ~1e19 FLOPs) all have fewer tokens per parameter.
OUTLIER_MAX_TOKENS_PER_PARAM = 0.41
#: sha256 of the shipped Porian et al. CSV (a byte-for-byte copy of ``../shared/data/porian_isoflops.csv``).
PORIAN_SHA256 = "ff852aee1263447134e719bc5d0aa9975bef245ea98936331d44ed42262d9008"


def chinchilla_path():
    """Path of the shipped CSV (a ``Traversable`` inside the installed package)."""
    return resources.files(__name__) / "svg_extracted_data.csv"


def chinchilla(*, drop_outliers: bool = False) -> pd.DataFrame:
    """The embedded Chinchilla runs as a DataFrame with columns params, tokens, flops, loss.

    Args:
      drop_outliers: drop the 5 runs at about 1e19 FLOPs with under 0.41 tokens per
        parameter, as Besiroglu et al. 2024 do in their main fit (240 runs remain). The
        default keeps all 245: chinplan's robust likelihood copes with them.

    Returns:
      One row per run: ``params`` N, ``tokens`` D = C/(6N), ``flops`` C and final ``loss``,
      all float64.
    """
    _checks.flag("drop_outliers", drop_outliers)
    raw = pd.read_csv(chinchilla_path().open("rb"))
    params = raw["Model Size"].to_numpy(np.float64)
    flops = raw["Training FLOP"].to_numpy(np.float64)
    frame = pd.DataFrame(
        {
            "params": params,
            "tokens": flops / (FLOPS_PER_PARAM_TOKEN * params),
            "flops": flops,
            "loss": raw["loss"].to_numpy(np.float64),
        }
    )
    if drop_outliers:
        frame = frame[frame["tokens"] / frame["params"] >= OUTLIER_MAX_TOKENS_PER_PARAM].reset_index(drop=True)
    return frame


def datablations() -> pd.DataFrame:
    """The 306 runs of Muennighoff et al. 2023 ("Scaling Data-Constrained Language Models"),
    from huggingface/datablations (Apache-2.0); see ``SOURCE-datablations.md`` beside this file.

    Returns:
      The CSV's columns (name, params, tokens, unique_tokens, epochs, dataset, seed, loss,
      in_paper_fit) with params, tokens and unique_tokens as float64 (counts up to 1e11 stay
      exact, and products such as 6ND never wrap around in int64) and ``flops`` = 6ND added.
    """
    runs = pd.read_csv((resources.files(__name__) / "datablations_runs.csv").open("rb"))
    for column in ("params", "tokens", "unique_tokens", "epochs", "loss"):
        runs[column] = runs[column].to_numpy(np.float64)
    runs["flops"] = FLOPS_PER_PARAM_TOKEN * runs["params"] * runs["tokens"]
    return runs


def porian_path():
    """Path of the shipped Porian et al. 2024 CSV (a ``Traversable`` inside the installed package)."""
    return resources.files(__name__) / "porian_isoflops.csv"


def porian() -> pd.DataFrame:
    """The isoFLOP ladders of Porian et al. 2024 ("Resolving Discrepancies in Compute-Optimal
    Scaling of Language Models"), from formll/resolving-scaling-law-discrepancies (MIT); see
    ``SOURCE-porian.md`` beside this file.

    Fifteen ladders (``ladder`` = ``dataset|condition``: RefinedWeb or OWT2 under one training
    setting), each with budgets C = 1.25e16 x 2^k (k = 0..11) and 5-16 model sizes per budget;
    their compute-optimal exponents run from 0.50 to 0.86. ``loss_kind`` is ``validation`` for
    8 ladders and ``train`` (smoothed training loss) for 7. Fit and judge the ladders one at a
    time: parameter counts follow each condition's own accounting.

    Returns:
      The CSV's columns (ladder, dataset, condition, loss_kind, params, tokens, budget, loss),
      one row per model size and budget, with params, tokens, budget and loss as float64 and
      ``flops`` = 6ND added (equal to ``budget`` up to the CSV's rounding of tokens).
    """
    runs = pd.read_csv(porian_path().open("rb"))
    for column in ("params", "tokens", "budget", "loss"):
        runs[column] = runs[column].to_numpy(np.float64)
    runs["flops"] = FLOPS_PER_PARAM_TOKEN * runs["params"] * runs["tokens"]
    return runs
