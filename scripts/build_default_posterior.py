"""Builds the posteriors shipped with the package.

    python scripts/build_default_posterior.py [--out PATH]
    python scripts/build_default_posterior.py --law data-constrained [--out PATH]

Chinchilla law (chinplan/datasets/chinchilla_posterior.nc): NUTS on all 245 embedded
Chinchilla runs with the default priors. Data-constrained law
(chinplan/datasets/datablations_posterior.nc): NUTS on the 294 C4 runs of the datablations
set (the 12 C4-dedup runs are another data set) repeating their data at most
chinplan.fit.DEFAULT_MAX_EPOCHS epochs (docs/DATA_CONSTRAINED.md). Both with the fixed
settings of chinplan.fit.DEFAULT_FIT_SETTINGS. tests/test_default_posterior.py rebuilds each
and checks that the result agrees with the shipped file within Monte Carlo error.
"""

import argparse
import warnings
from importlib import resources

import jax

from chinplan import datasets
from chinplan.inference.fit import DEFAULT_FIT_SETTINGS, fit
from chinplan.decide.data_constrained import POSTERIOR_FILE as DATA_CONSTRAINED_FILE
from chinplan.inference.posterior import DEFAULT_POSTERIOR_FILE


def build_default_posterior(progress: bool | None = None):
    settings = dict(DEFAULT_FIT_SETTINGS)
    key = jax.random.PRNGKey(settings.pop("seed"))
    return fit(datasets.chinchilla(), key=key, progress=progress, **settings)


def build_data_constrained_posterior(progress: bool | None = None):
    settings = dict(DEFAULT_FIT_SETTINGS)
    key = jax.random.PRNGKey(settings.pop("seed"))
    runs = datasets.datablations()
    runs = runs[runs["dataset"] == "c4"][["params", "tokens", "unique_tokens", "loss"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the runs beyond the epoch range, left out by design
        return fit(runs, key=key, law="data_constrained", progress=progress, **settings)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--law", choices=("chinchilla", "data-constrained"), default="chinchilla")
    parser.add_argument("--out", help="where to write the NetCDF file (default: the shipped file)")
    args = parser.parse_args()
    name = DEFAULT_POSTERIOR_FILE if args.law == "chinchilla" else DATA_CONSTRAINED_FILE
    args.out = args.out or str(resources.files("chinplan.datasets") / name)
    posterior = build_default_posterior() if args.law == "chinchilla" else build_data_constrained_posterior()
    posterior.save(args.out)
    print(posterior)
    print(posterior.summary().round(4).to_string())


if __name__ == "__main__":
    main()
