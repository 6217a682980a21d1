"""Builds chinplan/datasets/chinchilla_posterior.nc, the posterior shipped with the package.

    python scripts/build_default_posterior.py [--out PATH]

NUTS on all 245 embedded Chinchilla runs with the default priors and the fixed settings of
chinplan.fit.DEFAULT_FIT_SETTINGS. tests/test_default_posterior.py rebuilds it and checks
that the result agrees with the shipped file within Monte Carlo error.
"""

import argparse
from importlib import resources

import jax

from chinplan import datasets
from chinplan.fit import DEFAULT_FIT_SETTINGS, fit
from chinplan.posterior import DEFAULT_POSTERIOR_FILE


def build_default_posterior(progress: bool | None = None):
    settings = dict(DEFAULT_FIT_SETTINGS)
    key = jax.random.PRNGKey(settings.pop("seed"))
    return fit(datasets.chinchilla(), key=key, progress=progress, **settings)


def main():
    default_out = resources.files("chinplan.datasets") / DEFAULT_POSTERIOR_FILE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(default_out), help="where to write the NetCDF file")
    args = parser.parse_args()
    posterior = build_default_posterior()
    posterior.save(args.out)
    print(posterior)
    print(posterior.summary().round(4).to_string())


if __name__ == "__main__":
    main()
