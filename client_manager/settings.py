"""Client-manager settings (`CLIENT_MANAGER_*`; SkyDriver's address and token are the scanner's
`SKYSCAN_SKYDRIVER_*`, shared with the server it runs beside)."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ManagerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLIENT_MANAGER_", extra="ignore")

    skydriver_address: str = Field(
        "",
        validation_alias=AliasChoices(
            "CLIENT_MANAGER_SKYDRIVER_ADDRESS", "SKYSCAN_SKYDRIVER_ADDRESS"
        ),
        description="SkyDriver base URL (reports and stop signals); empty = stand-alone",
    )
    skydriver_auth: SecretStr = Field(
        SecretStr(""),
        validation_alias=AliasChoices("CLIENT_MANAGER_SKYDRIVER_AUTH", "SKYSCAN_SKYDRIVER_AUTH"),
        description="bearer token for SkyDriver",
    )
    startup_timeout_s: float = Field(
        600.0, gt=0, description="how long to wait for the server's startup file"
    )
    max_replacements_per_worker: int = Field(
        3,
        ge=0,
        description="a dead worker is replaced at most this many times per requested worker",
    )
    stop_timeout_s: float = Field(15.0, gt=0, description="graceful stop time before SIGKILL")
    skydriver_unreachable_timeout_s: float = Field(
        600.0, gt=0, description="SkyDriver unreachable this long: stop the workers and exit"
    )
    log: str = Field("INFO", description="log level")
