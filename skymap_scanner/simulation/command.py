"""Options and body of ``skymap-scanner simulate`` (the command-line parser lives in ``cli.py``).

``add_simulate_arguments(subparser)`` declares the options; ``run_simulate(args)`` writes the events
and returns the exit status. The default is the independent simulator
(:mod:`skymap_scanner.simulation.independent`); ``--simulator toy`` is the old fast toy model.
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

from .independent import simulate_independent_events
from .muon import simulate_events, write_events

log = logging.getLogger(__name__)

_DEFAULT_ENERGY = {"independent": (1e3, 1e7), "toy": (1e3, 1e6)}


def add_simulate_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``skymap-scanner simulate`` on ``parser``."""
    parser.add_argument("--n-events", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument(
        "--simulator",
        choices=("independent", "toy"),
        default="independent",
        help="independent: muons with stochastic losses, photons through the layered ice "
        "(default, ~5 s per event); toy: the fit's own Pandel model (fast, self-consistent)",
    )
    parser.add_argument(
        "--energy-range-gev",
        type=float,
        nargs=2,
        default=None,
        metavar=("MIN", "MAX"),
        help="log-uniform energy range (default 1e3 1e7; toy: 1e3 1e6)",
    )
    parser.add_argument(
        "--zenith-range-deg", type=float, nargs=2, default=(0.0, 180.0), metavar=("MIN", "MAX")
    )
    parser.add_argument("--noise-rate-hz", type=float, default=500.0)
    parser.add_argument(
        "--starting-fraction",
        type=float,
        default=0.5,
        help="independent simulator: fraction of starting tracks (neutrino vertex inside)",
    )
    parser.add_argument(
        "--min-length-m",
        type=float,
        default=300.0,
        help="independent simulator: minimal track length in the instrumented volume",
    )


def run_simulate(args: argparse.Namespace) -> int:
    """Simulate and write the events; print one path per line."""
    energy = tuple(args.energy_range_gev or _DEFAULT_ENERGY[args.simulator])
    zmin, zmax = (math.radians(v) for v in args.zenith_range_deg)
    if args.simulator == "toy":
        events = simulate_events(
            args.n_events,
            args.seed,
            energy_range_gev=(energy[0], energy[1]),
            zenith_range=(zmin, zmax),
            noise_rate_hz=args.noise_rate_hz,
        )
    else:
        events = simulate_independent_events(
            args.n_events,
            args.seed,
            energy_range_gev=(energy[0], energy[1]),
            zenith_range=(zmin, zmax),
            noise_rate_hz=args.noise_rate_hz,
            starting_fraction=args.starting_fraction,
            min_length_m=args.min_length_m,
        )
    for path in write_events(events, args.output_dir):
        print(path)
    return 0
