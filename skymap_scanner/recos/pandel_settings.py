"""Settings of the `pandel_spe` / `pandel_mpe` reconstructions (env prefix ``SKYSCAN_PANDEL_``).

Read on the server by ``config_from_env`` and handed to every worker in the startup data, so that all
workers of a scan run the same likelihood. Each option switches one part of the likelihood (see
``physics/likelihood.py``); the defaults are the parts that measured better on the independent
simulator (README, Physics).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class PandelSettings(BaseSettings):
    """The track likelihood's options."""

    model_config = SettingsConfigDict(env_prefix="SKYSCAN_PANDEL_", extra="ignore")

    ice: Literal["layered", "bulk"] = Field(
        "layered",
        description="layered: scale each DOM's Pandel delays with the SPICE scattering between the "
        "track and the DOM; bulk: one bulk ice for all DOMs",
    )
    ice_reference_scattering_m: float = Field(
        25.0, gt=0, description="effective scattering length (m) at which the bulk Pandel holds"
    )
    ice_exponent: float = Field(
        0.5, ge=0, le=2, description="delays scale as (scattering / reference) ** exponent"
    )
    max_photons: float = Field(
        50.0, ge=0, description="cap on the MPE photon count of a DOM (0: no cap)"
    )
    starting: Literal["auto", "always", "never"] = Field(
        "always",
        description="starting-track hypothesis: always (every pixel fits a vertex; a through-going "
        "track's vertex moves upstream of all light), auto (chosen once per event by -log L at probe "
        "directions), or never",
    )
    starting_threshold: float = Field(
        10.0,
        ge=0,
        description="auto: -log L must improve by this much (nat) for the starting hypothesis",
    )
    nohit: bool = Field(
        False,
        description="add the hit/no-hit term (DOMs that saw nothing although light was expected)",
    )
